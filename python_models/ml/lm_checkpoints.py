"""Train the item language model on the train split; one row per kept checkpoint, newest first.

Nightly builds warm-start: when the previous checkpoint has the same settings and new
events arrived, training starts from its weights (new items from their content tokens) and
runs lm.warm_epochs epochs over the windows with new events plus a replay sample of older
ones, early stopping on the current validation split. A full retrain happens on the first
build, on --full-refresh, when a setting or the split changed, when the events the previous
model learned from changed other than by appends (a corrected or removed event: the
`fit_digest` of each checkpoint holds a hash of every user's fit sequence), and every
lm.full_retrain_every builds.

It learns only from what the holdout lists may see (features.fit_events and features.fit_tags,
purpose 'holdout'): train events to fit, valid events to stop early and fit the mixture, and the
content tokens of genres and visible tags, so no holdout list can depend on a test event.
"""
import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import polars as pl

from duckrec.ml import TrainConfig, TrainedLM, train_lm
from duckrec.ml.data import text_matrix, training_data
from duckrec.ml.distributed import train_distributed
from duckrec.ml.score import CHECKPOINT_ORDER
from duckrec.ml.warm import carry_weights, compatible, fit_digest, grown_by_appends, warm_windows

NOT_TRAINING_SETTINGS = ("candidates", "mc_passes")
NIGHTLY_SETTINGS = {"warm_start": True, "warm_epochs": 2, "warm_lr_scale": 0.3, "replay_ratio": 1.0,
                    "full_retrain_every": 7, "keep_checkpoints": 3}
SCHEMA = {"checkpoint_id": pl.Utf8, "parent_checkpoint_id": pl.Utf8, "trained_at": pl.Datetime("us"),
          "config": pl.Utf8, "trained_on": pl.Utf8, "history": pl.Utf8, "state": pl.Binary, "fit_digest": pl.Binary}


def _previous(dbt, session):
    """The kept checkpoints, newest first (None on a first build, after --full-refresh, or
    when the table predates warm starts)."""
    if dbt.full_refresh:
        return None
    try:
        rows = session.sql(f"select * from {dbt.this} order by {CHECKPOINT_ORDER}").pl()
    except Exception:  # noqa: BLE001 - no table yet
        return None
    if rows.is_empty() or "fit_digest" not in rows.columns:
        return None  # a table from before the fit digest: nothing proves what its model learned from
    return rows.select(list(SCHEMA)).cast(SCHEMA)


def model(dbt, session):
    dbt.config(materialized="table")
    # sorted: a table's rows come in no fixed order, and validation means follow the row order
    events = dbt.ref("fit_events").pl().filter(pl.col("purpose") == "holdout").sort("user_id", "position")
    items = dbt.ref("items").pl()
    tags = dbt.ref("fit_tags").pl().filter(pl.col("purpose") == "holdout").select("item_id", "tag").unique()
    lm_vars = dict(dbt.var("lm", {}) or {})
    nightly = {k: lm_vars.pop(k, v) for k, v in NIGHTLY_SETTINGS.items()}
    settings = {k: v for k, v in lm_vars.items() if k not in NOT_TRAINING_SETTINGS}
    settings.setdefault("seed", dbt.var("seed", 42))
    # no more torch threads than the build target gives DuckDB
    settings.setdefault("threads", int(session.execute("select current_setting('threads')").fetchall()[0][0]))
    config = TrainConfig.from_vars(settings)

    text_var = dict(dbt.var("text", {}) or {})
    texts = dbt.ref("item_text_embeddings").pl() if text_var.get("enabled", True) else None

    data = training_data(events, items, tags)
    catalogue, index, train, valid = data.catalogue, data.index, data.train, data.valid
    train_users, train_seqs, valid_histories = data.train_users, data.train_seqs, data.valid_histories
    text = text_matrix(catalogue, None if texts is None else texts.select("item_id", "embedding"))
    text_dim = 0 if text is None else int(text.shape[1])
    watermark = events["event_time"].max()
    # the split decides which events are train and valid: a model is kept or warm-started only
    # under the same split and when what it learned from is unchanged or grew by appends
    split = {"split_rule": dbt.var("split_rule", "leave_last_out"), "temporal_cutoff": dbt.var("temporal_cutoff", None)}
    fit_keys = (events["user_id"].to_numpy(), events["item_id"].to_numpy(), events["value"].to_numpy())
    digest = fit_digest(*fit_keys)
    trained_on = {"train_events": int(train.sum()), "users": len(train_seqs), "items": catalogue.n_items,
                  "data_watermark": str(watermark), "split": split, "text_dim": text_dim}

    previous = _previous(dbt, session)
    parent = None if previous is None else previous.row(0, named=True)
    parent_on = json.loads(parent["trained_on"]) if parent else {}
    parent_lm = TrainedLM.from_bytes(parent["state"]) if parent else None
    same_settings = parent is not None and json.loads(parent["config"]).get("train") == json.loads(config.to_json())
    same_split = parent is not None and parent_on.get("split") == split
    same_items = parent is not None and np.array_equal(parent_lm.catalogue.item_ids, catalogue.item_ids) \
        and _same_text(parent_lm, text)
    if same_settings and same_split and parent["fit_digest"] == digest and same_items:
        dbt.log(f"no new event since checkpoint {parent['checkpoint_id']}: kept as it is")
        return previous
    appended, changed = grown_by_appends(parent["fit_digest"], *fit_keys) if parent is not None else (False, "")
    since_full = int(parent_on.get("builds_since_full", 0)) + 1
    reason = ("first build" if parent is None and not dbt.full_refresh else "--full-refresh" if dbt.full_refresh
              else "the lm settings changed" if not same_settings
              else f"the split changed ({_split_text(parent_on.get('split'))} -> {_split_text(split)})"
              if not same_split
              else f"the events it learned from changed: {changed}" if not appended
              else "warm starts are off (lm.warm_start)" if not nightly["warm_start"]
              else f"every {nightly['full_retrain_every']} builds (lm.full_retrain_every)"
              if since_full >= int(nightly["full_retrain_every"])
              else "the model's shape changed" if not compatible(parent_lm, {**settings, "text_dim": text_dim})
              else None)

    counts = np.bincount(np.concatenate(train_seqs), minlength=catalogue.n_items + 1) if train_seqs \
        else np.zeros(catalogue.n_items + 1, dtype=np.int64)
    if reason is None:
        # a user's train sequence grew by the events newer than the parent's watermark
        # (leave_last_out moves the older valid/test events into train; 2 more cover them)
        old_mark = datetime.fromisoformat(parent_on["data_watermark"])
        newer = events.filter(pl.col("event_time") > pl.lit(old_mark)).group_by("user_id").len()
        n_new_of = dict(zip(newer["user_id"].to_list(), newer["len"].to_list()))
        n_new = np.array([n_new_of.get(u, 0) + 2 if u in n_new_of else 0 for u in train_users.tolist()])
        windows, n_fresh, n_replay = warm_windows(train_seqs, n_new, config.window, float(nightly["replay_ratio"]),
                                                  config.seed)
        dbt.log(f"warm start from {parent['checkpoint_id']}: {len(n_new_of)} users with new events, "
                f"{n_fresh} new windows + {n_replay} replayed, at most {nightly['warm_epochs']} epochs")
        init = carry_weights(parent_lm, catalogue, counts > 0, config.seed, text)
        epochs = int(nightly["warm_epochs"]) if parent["fit_digest"] != digest else 0
        if not epochs:  # new items (or texts) but no new event: their vectors come from their content
            dbt.log(f"no new event since checkpoint {parent['checkpoint_id']}, but the catalogue or its texts "
                    f"changed ({catalogue.n_items} items, {parent_lm.catalogue.n_items} before): carried over, "
                    "new items scored from their content")
            windows = None
        run_config = replace(config, epochs=epochs, lr=config.lr * float(nightly["warm_lr_scale"]))
        result = train_lm(catalogue, train_seqs, valid_histories, index[valid], run_config, log=dbt.log,
                          progress=dbt.progress, init=init, windows=windows, text=text)
        trained_on.update(mode="warm", builds_since_full=since_full, new_windows=n_fresh, replay_windows=n_replay)
    else:
        dbt.log(f"full training ({reason}) on {int(train.sum())} train events of {len(train_seqs)} users, "
                f"{catalogue.n_items} items, {len(catalogue.token_names)} content tokens")
        if config.distributed:  # the same training on several processes (duckrec.ml.distributed)
            result = train_distributed(catalogue, train_seqs, valid_histories, index[valid], config, log=dbt.log,
                                       text=text)
        else:
            result = train_lm(catalogue, train_seqs, valid_histories, index[valid], config, log=dbt.log,
                              progress=dbt.progress, text=text)
        trained_on.update(mode="full", builds_since_full=0, reason=reason)

    lm = result.lm
    full_config = {
        "train": json.loads(config.to_json()),
        "model": lm.model.config.to_dict(),
        "mixture": lm.mixture.__dict__,
        "best_epoch": result.best_epoch,
    }
    parent_id = parent["checkpoint_id"] if parent and trained_on["mode"] == "warm" else None
    key = json.dumps([parent_id, trained_on, full_config["train"]], sort_keys=True)
    checkpoint_id = f"lm-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    dbt.log(f"checkpoint {checkpoint_id}: kept epoch {result.best_epoch}; mixture {lm.mixture}")
    new = pl.DataFrame({
        "checkpoint_id": [checkpoint_id],
        "parent_checkpoint_id": [parent_id],
        "trained_at": [datetime.now(timezone.utc).replace(tzinfo=None)],
        "config": [json.dumps(full_config, sort_keys=True)],
        "trained_on": [json.dumps(trained_on, sort_keys=True)],
        "history": [json.dumps(result.history)],
        "state": [lm.to_bytes()],
        "fit_digest": [digest],
    }, schema=SCHEMA)
    keep = max(1, int(nightly["keep_checkpoints"]))
    if previous is None:
        return new
    older = previous.filter(pl.col("checkpoint_id") != checkpoint_id).head(keep - 1)
    return pl.concat([new, older])


def _same_text(previous: TrainedLM, text) -> bool:
    """Whether the previous model read exactly these text embeddings (or, like now, none)."""
    old = getattr(previous.model, "text_vectors", None)
    if old is None or text is None:
        return old is None and text is None
    return tuple(old.shape) == text.shape and bool(np.array_equal(old.numpy(), text))


def _split_text(split: dict | None) -> str:
    if not split:
        return "unrecorded"
    cutoff = split.get("temporal_cutoff")
    return split.get("split_rule", "?") + (f" at {cutoff}" if cutoff and split.get("split_rule") == "temporal" else "")
