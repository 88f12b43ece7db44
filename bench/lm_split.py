"""duckrec's holdout split for the bench scripts that train outside a build
(bench/lm_cells.py, bench/sasrec_reference.py, bench/lm_calibration.py).

Either read from a built warehouse (features.fit_events and features.fit_tags of purpose
'holdout', staging.items: what ml.lm_checkpoints trains on), or built from a ratings file of
the seeds' shape the way features.event_splits builds leave_last_out: one row per (user,
item, time) event, each user's events ordered by (time, item id, value); the last is
'test', the one before 'valid', the rest 'train'; users with fewer than 3 events stay in
'train'. A ratings file brings no content (no genres, no tags).
"""
from __future__ import annotations

import duckdb
import polars as pl

SPLIT_SQL = """
with events as (
    select distinct "userId"::bigint as user_id, "movieId"::bigint as item_id,
           "timestamp"::bigint as event_time, "rating"::double as value
    from read_csv_auto('{path}', header = true)
),
sequenced as (
    select *, row_number() over (partition by user_id order by event_time, item_id, value) as position,
           count(*) over (partition by user_id) as n
    from events
)
select user_id, item_id, event_time, position::integer as position,
       case when n < 3 then 'train' when position = n then 'test' when position = n - 1 then 'valid'
            else 'train' end as split
from sequenced
order by user_id, position
"""


def load_split(warehouse: str | None = None, ratings: str | None = None
               ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(events: user_id, item_id, position, split; items: item_id, genres; tags: item_id, tag)."""
    if warehouse:
        con = duckdb.connect(warehouse, read_only=True)
        events = con.sql("select user_id, item_id, position, split from features.fit_events "
                         "where purpose = 'holdout' order by user_id, position").pl()
        items = con.sql("select item_id, genres from staging.items").pl()
        tags = con.sql("select distinct item_id, tag from features.fit_tags where purpose = 'holdout'").pl()
        # fit_events holds no test event; the holdout targets come from the split itself
        test = con.sql("select user_id, item_id, position, split from features.event_splits "
                       "where split = 'test' order by user_id").pl()
        con.close()
        return pl.concat([events, test]).sort("user_id", "position"), items, tags
    if not ratings:
        raise SystemExit("expected --warehouse or --ratings")
    events = duckdb.sql(SPLIT_SQL.format(path=ratings)).pl().select("user_id", "item_id", "position", "split")
    items = events.select("item_id").unique().sort("item_id").with_columns(
        pl.lit([], dtype=pl.List(pl.Utf8)).alias("genres"))
    tags = pl.DataFrame({"item_id": [], "tag": []}, schema={"item_id": pl.Int64, "tag": pl.Utf8})
    return events, items, tags
