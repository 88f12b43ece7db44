"""Train the item language model on the train split; one row: config, history, weights."""
import json
from datetime import datetime, timezone

import numpy as np
import polars as pl

from duckrec.ml import TrainConfig, build_catalogue, train_lm, user_sequences
from duckrec.ml.distributed import train_distributed

NOT_TRAINING_SETTINGS = ("candidates", "mc_passes")


def model(dbt, session):
    dbt.config(materialized="table")
    events = dbt.ref("event_splits").pl()
    items = dbt.ref("items").pl()
    tags = dbt.ref("item_tags").pl()
    settings = {k: v for k, v in dict(dbt.var("lm", {}) or {}).items() if k not in NOT_TRAINING_SETTINGS}
    settings.setdefault("seed", dbt.var("seed", 42))
    # no more torch threads than the build target gives DuckDB
    settings.setdefault("threads", int(session.execute("select current_setting('threads')").fetchall()[0][0]))
    config = TrainConfig.from_vars(settings)

    genres = items.select("item_id", pl.col("genres").alias("token")).explode("token").drop_nulls()
    tokens = pl.concat([
        genres.with_columns(("genre:" + pl.col("token").str.to_lowercase()).alias("token")),
        tags.select("item_id", ("tag:" + pl.col("tag").str.to_lowercase().str.strip_chars()).alias("token")),
    ])
    catalogue = build_catalogue(items["item_id"].to_numpy(), tokens["item_id"].to_numpy(),
                                tokens["token"].to_numpy())
    index = catalogue.index(events["item_id"].to_numpy(), where="event_splits.item_id")
    users, positions, split = events["user_id"].to_numpy(), events["position"].to_numpy(), events["split"].to_numpy()
    train = split == "train"
    train_users, train_seqs = user_sequences(users[train], index[train], positions[train])
    history_of = dict(zip(train_users.tolist(), train_seqs))
    valid = (split == "valid") & np.isin(users, train_users)
    valid_histories = [history_of[u] for u in users[valid].tolist()]

    dbt.log(f"training the LM on {int(train.sum())} train events of {len(train_seqs)} users, "
            f"{catalogue.n_items} items, {len(catalogue.token_names)} content tokens")
    if config.distributed:  # the same training on several processes (duckrec.ml.distributed)
        result = train_distributed(catalogue, train_seqs, valid_histories, index[valid], config, log=dbt.log)
    else:
        result = train_lm(catalogue, train_seqs, valid_histories, index[valid], config, log=dbt.log,
                          progress=dbt.progress)
    lm = result.lm
    full_config = {
        "train": json.loads(config.to_json()),
        "model": lm.model.config.to_dict(),
        "mixture": lm.mixture.__dict__,
        "best_epoch": result.best_epoch,
    }
    dbt.log(f"kept epoch {result.best_epoch}; mixture {lm.mixture}")
    return pl.DataFrame({
        "checkpoint_id": [f"lm-seed{config.seed}-epoch{result.best_epoch}"],
        "trained_at": [datetime.now(timezone.utc).replace(tzinfo=None)],
        "config": [json.dumps(full_config, sort_keys=True)],
        "history": [json.dumps(result.history)],
        "state": [lm.to_bytes()],
    }, schema={"checkpoint_id": pl.Utf8, "trained_at": pl.Datetime("us"), "config": pl.Utf8,
               "history": pl.Utf8, "state": pl.Binary})
