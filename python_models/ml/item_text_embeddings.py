"""Each item's text (features.item_texts) encoded by a small pretrained sentence encoder,
all-MiniLM-L6-v2 (duckrec.ml.text): 384 floats of unit length per item.

Incremental by design: a row of the previous table whose item, text, encoder and encoder
version are all unchanged is kept as it is; only new or changed texts are encoded, so a night
that adds 20 items encodes 20 texts (the build log and _duckrec.node_runs.summary say
"encoded 20 of N texts"). --full-refresh encodes every text again. Kept rows equal what a
fresh encoding gives up to float rounding (a text's vector does not depend on its batch
beyond the last bits).
"""
from datetime import datetime, timezone

import polars as pl

from duckrec.ml import text as text_encoder

SCHEMA = {"item_id": pl.Int64, "text": pl.Utf8,
          "embedding": pl.Array(pl.Float32, text_encoder.DIMENSIONS),
          "encoder": pl.Utf8, "encoder_version": pl.Utf8, "encoded_at": pl.Datetime("us")}


def _previous(dbt, session) -> pl.DataFrame:
    """The rows the last build left (none on a first build or under --full-refresh)."""
    if dbt.full_refresh:
        return pl.DataFrame(schema=SCHEMA)
    try:
        rows = session.sql(f"select {', '.join(SCHEMA)} from {dbt.this}").pl()
    except Exception:  # noqa: BLE001 - no table yet (first build), or one from an older layout
        return pl.DataFrame(schema=SCHEMA)
    return rows.cast(SCHEMA)


def model(dbt, session):
    dbt.config(materialized="table")
    settings = text_encoder.text_settings(dbt.var("text", {}))
    texts = dbt.ref("item_texts").pl().select(pl.col("item_id").cast(pl.Int64), pl.col("text")).sort("item_id")
    if not settings["enabled"] or texts.is_empty():
        # off, or a catalogue with nothing to read (the data test item_texts_cover_catalogue warns):
        # the encoder is not even loaded
        return pl.DataFrame(schema=SCHEMA)
    encoder, version = text_encoder.ENCODER, text_encoder.encoder_version()
    previous = _previous(dbt, session)
    kept = previous.filter((pl.col("encoder") == encoder) & (pl.col("encoder_version") == version)) \
        .join(texts, on=["item_id", "text"], how="semi")
    todo = texts.join(kept, on="item_id", how="anti")
    threads = int(session.execute("select current_setting('threads')").fetchall()[0][0])

    def progress(done, total):
        dbt.progress("text encoding", done, total, unit="text", final=done == total)

    vectors = text_encoder.encode(todo["text"].to_list(), threads=threads, batch_size=int(settings["batch_size"]),
                                  progress=progress)
    encoded = todo.with_columns(
        pl.Series("embedding", vectors, dtype=SCHEMA["embedding"]),
        pl.lit(encoder).alias("encoder"),
        pl.lit(version).alias("encoder_version"),
        pl.lit(datetime.now(timezone.utc).replace(tzinfo=None)).cast(SCHEMA["encoded_at"]).alias("encoded_at"),
    )
    line = f"encoded {todo.height:,} of {texts.height:,} texts ({kept.height:,} unchanged, kept) with {encoder}"
    dbt.log(line)
    dbt.summary(line)
    return pl.concat([kept.select(list(SCHEMA)), encoded.select(list(SCHEMA))]).sort("item_id")
