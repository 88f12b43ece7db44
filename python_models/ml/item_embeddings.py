"""Each catalogue item's vector in the LM's item space (content-only for cold items)."""
import polars as pl

from duckrec.ml import latest_checkpoint  # before torch: it sets how torch's idle threads wait
import torch


def model(dbt, session):
    dbt.config(materialized="table")
    lm = latest_checkpoint(dbt.ref("lm_checkpoints"))
    with torch.no_grad():
        vectors = lm.model.item_vectors()[1:].numpy()
    return pl.DataFrame({
        "item_id": pl.Series(lm.catalogue.item_ids, dtype=pl.Int64),
        "embedding": pl.Series(vectors, dtype=pl.Array(pl.Float32, vectors.shape[1])),
    })
