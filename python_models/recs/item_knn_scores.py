"""item_knn's scored candidates: for every list user (recs.list_users) and purpose, the items
most similar to the user's history (recs.item_knn_neighbours), at most the purpose's list
length of them (var k served, max(var ks) holdout), never a history item.

A candidate's score is the sum of its similarities to the user's history items (an item the
user rated twice counts twice), rounded to 9 places (a parallel float sum differs in its last
bits from run to run and would swap ties); source_rank orders a user's candidates by score,
ties to the more popular item (features.item_popularity); closest_history_item is the history
item most similar to the candidate (ties: the smaller item id), which names the reason.

One row per user and candidate item is hundreds of millions of rows at 10M events (history
rows x neighbours): one aggregate and window over all of them ran out of a 1.28 GB
memory_limit there. So the users are scored a block at a time (duckrec.ml.rerank.blocks, at
most var knn_block_rows (8M) history x neighbour rows a block; one block a purpose on the default
seeds), each block's top candidates written before the next is read. A user's candidates
depend only on that user's history, so the table does not depend on the blocks.
"""
import polars as pl

from duckrec.ml import rerank

SCHEMA = {"purpose": pl.Utf8, "user_id": pl.Int64, "item_id": pl.Int64, "score": pl.Float64,
          "source_rank": pl.Int64, "closest_history_item": pl.Int64}


def model(dbt, session):
    dbt.config(materialized="table")
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    neighbours_per_item = int(dbt.var("knn_neighbours", 20))
    fit_events = dbt.ref("fit_events").sql_query()
    users = dbt.ref("list_users").sql_query()
    neighbours = dbt.ref("item_knn_neighbours").sql_query()
    popularity = dbt.ref("item_popularity").sql_query()
    cur = session.cursor()  # the build's connection is busy writing this table while we stream
    counts = cur.sql(f"""
        select fit.purpose, fit.user_id, count(*) * {neighbours_per_item} as rows
        from ({fit_events}) fit
        semi join ({users}) users using (purpose, user_id)
        group by fit.purpose, fit.user_id
    """).pl()
    blocks = rerank.user_blocks(counts, int(dbt.var("knn_block_rows", 1 << 23)))

    def block_sql(block) -> str:
        purpose = block.purpose.replace("'", "''")
        return f"""
            with history as materialized (
                select fit.purpose, fit.user_id, fit.item_id
                from (select purpose, user_id, item_id from ({fit_events}) where {block.where()}) fit
                semi join ({users}) users using (purpose, user_id)
            ),
            neighbours as (
                select item_id, neighbour_id, similarity from ({neighbours}) where purpose = '{purpose}'
            ),
            scored as (
                select history.purpose, history.user_id, neighbours.neighbour_id as item_id,
                    round(sum(neighbours.similarity), 9) as score
                from history
                join neighbours on neighbours.item_id = history.item_id
                group by history.purpose, history.user_id, neighbours.neighbour_id
            ),
            unseen as (
                -- a list never repeats an item of the user's history
                select scored.* from scored anti join history using (purpose, user_id, item_id)
            ),
            top_candidates as materialized (
                select unseen.purpose, unseen.user_id, unseen.item_id, unseen.score,
                    row_number() over (partition by unseen.user_id
                                       order by unseen.score desc, popularity.popularity_rank) as source_rank
                from unseen
                join (select item_id, popularity_rank from ({popularity}) where purpose = '{purpose}') popularity
                    using (item_id)
                qualify source_rank <= {int(lengths[block.purpose])}
            ),
            closest_history as (
                select history.user_id, neighbours.neighbour_id as item_id, history.item_id as closest_history_item
                from history
                join neighbours on neighbours.item_id = history.item_id
                semi join top_candidates
                    on top_candidates.user_id = history.user_id and top_candidates.item_id = neighbours.neighbour_id
                qualify row_number() over (
                    partition by history.user_id, neighbours.neighbour_id
                    order by neighbours.similarity desc, history.item_id
                ) = 1
            )
            select top_candidates.purpose, top_candidates.user_id, top_candidates.item_id, top_candidates.score,
                top_candidates.source_rank, closest_history.closest_history_item
            from top_candidates
            join closest_history using (user_id, item_id)
        """

    yield pl.DataFrame(schema=SCHEMA)
    for number, block in enumerate(blocks):
        dbt.progress("item_knn scoring", number, len(blocks), unit="block")
        yield cur.sql(block_sql(block)).pl().cast(SCHEMA)
    dbt.progress("item_knn scoring", len(blocks), len(blocks), unit="block", final=True)
