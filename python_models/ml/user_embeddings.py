"""Each user's LM state after their full history, in the item space."""
import polars as pl

from duckrec.ml import latest_checkpoint, user_sequences, user_states


def model(dbt, session):
    dbt.config(materialized="table")
    lm = latest_checkpoint(dbt.ref("lm_checkpoints"))
    events = dbt.ref("event_splits").pl()
    index = lm.catalogue.index(events["item_id"].to_numpy(), where="event_splits.item_id")
    users, seqs = user_sequences(events["user_id"].to_numpy(), index, events["position"].to_numpy())
    states = user_states(lm.model, seqs, lm.context).numpy()
    return pl.DataFrame({
        "user_id": pl.Series(users, dtype=pl.Int64),
        "embedding": pl.Series(states, dtype=pl.Array(pl.Float32, states.shape[1])),
    })
