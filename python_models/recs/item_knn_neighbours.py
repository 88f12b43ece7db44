"""item_knn's neighbours: each item's var knn_neighbours most similar items per list purpose,
cosine similarity of co-occurrence over users,

    sim(i, j) = n_users(i and j) / sqrt(n_users(i) * n_users(j)),

over each user's last var knn_max_user_events items of the purpose's fit events
(features.fit_events) and pairs seen by at least var knn_min_co_users users of that purpose.

The pair count grows with the square of users' histories (0.5 billion pairs at 10M events):
one aggregate over every pair ran out of a 3 GB memory_limit there. So the items are counted
a bucket at a time (item_id modulo the bucket count), each bucket's pairs aggregated, scored
and cut to its items' top neighbours before the next starts; the buckets are as many as keep
each one under var knn_pairs_per_bucket ordered pairs (one bucket on the default seeds). The
SQL is the same for one bucket or many, and so is the table.
"""
import polars as pl

SCHEMA = {"purpose": pl.Utf8, "item_id": pl.Int64, "neighbour_id": pl.Int64, "similarity": pl.Float64}


def bucket_count(pairs: int, pairs_per_bucket: int) -> int:
    """Buckets so that each holds at most pairs_per_bucket of the ordered pairs (at least one)."""
    return max(1, -(-int(pairs) // int(pairs_per_bucket)))


def model(dbt, session):
    dbt.config(materialized="table")
    neighbours = int(dbt.var("knn_neighbours", 20))
    max_user_events = dbt.var("knn_max_user_events", 200)
    min_co_users = int(dbt.var("knn_min_co_users", 3))
    pairs_per_bucket = int(dbt.var("knn_pairs_per_bucket", 50_000_000))
    fit_events = dbt.ref("fit_events").sql_query()
    cur = session.cursor()  # the build's connection is busy writing this table while we stream
    cur.execute(f"""
        create or replace temp table knn_user_items as
        with user_items as (
            select purpose, user_id, item_id, max(position) as last_position
            from ({fit_events})
            group by purpose, user_id, item_id
        )
        select user_items.*, sizes.n_items
        from user_items
        join (select purpose, user_id, count(*) as n_items from user_items group by purpose, user_id) sizes
            using (purpose, user_id)
    """)
    # heavy users would dominate the pair count (a user with n items makes n^2/2 pairs): only
    # each user's most recent items count, as Mahout's maxPrefsPerUser does. Only heavy users'
    # rows go through the window (a window over every row ran out of memory at 10M events).
    if max_user_events is None:
        recent = "select purpose, user_id, item_id from knn_user_items"
    else:
        recent = f"""
            select purpose, user_id, item_id from knn_user_items where n_items <= {int(max_user_events)}
            union all
            select purpose, user_id, item_id from knn_user_items where n_items > {int(max_user_events)}
            qualify row_number() over (partition by purpose, user_id order by last_position desc) <= {int(max_user_events)}
        """
    cur.execute(f"""
        create or replace temp table knn_events as
        select user_id, item_id, bool_or(purpose = 'served') as in_served, bool_or(purpose = 'holdout') as in_holdout
        from ({recent})
        group by user_id, item_id
    """)
    cur.execute("drop table knn_user_items")
    cur.execute("""
        create or replace temp table knn_item_users as
        select item_id, count(*) filter (where in_served) as n_served, count(*) filter (where in_holdout) as n_holdout
        from knn_events
        group by item_id
    """)
    # a pair seen by fewer than knn_min_co_users users is noise (and most of the pairs); neither
    # of its items can be in such a pair unless it has that many users itself
    cur.execute(f"""
        create or replace temp table knn_frequent as
        select knn_events.*
        from knn_events
        join knn_item_users using (item_id)
        where (knn_events.in_served and knn_item_users.n_served >= {min_co_users})
            or (knn_events.in_holdout and knn_item_users.n_holdout >= {min_co_users})
    """)
    cur.execute("drop table knn_events")
    pairs = cur.execute("""
        select coalesce(sum(n * (n - 1)), 0)::hugeint
        from (select count(*) as n from knn_frequent group by user_id)
    """).fetchall()[0][0]
    buckets = bucket_count(pairs, pairs_per_bucket)
    dbt.log(f"item_knn: {pairs:,} ordered item pairs in {buckets} bucket(s)")

    def bucket_sql(bucket: int) -> str:
        mine = "" if buckets == 1 else f"where a.item_id % {buckets} = {bucket}"
        return f"""
            with pair_counts as (
                select
                    a.item_id,
                    b.item_id as neighbour_id,
                    count(*) filter (where a.in_served and b.in_served) as n_served,
                    count(*) filter (where a.in_holdout and b.in_holdout) as n_holdout
                from (select * from knn_frequent a {mine}) a
                join knn_frequent b on a.user_id = b.user_id and a.item_id <> b.item_id
                group by a.item_id, b.item_id
                having n_served >= {min_co_users} or n_holdout >= {min_co_users}
            ),
            similarity as (
                -- each purpose's count must pass the threshold on its own, or test events would choose pairs
                select
                    pair_counts.item_id,
                    pair_counts.neighbour_id,
                    case when pair_counts.n_served >= {min_co_users}
                        then pair_counts.n_served / sqrt(ua.n_served * ub.n_served) end as served_similarity,
                    case when pair_counts.n_holdout >= {min_co_users}
                        then pair_counts.n_holdout / sqrt(ua.n_holdout * ub.n_holdout) end as holdout_similarity
                from pair_counts
                join knn_item_users ua on ua.item_id = pair_counts.item_id
                join knn_item_users ub on ub.item_id = pair_counts.neighbour_id
            )
            select purpose, item_id, neighbour_id, similarity
            from (
                select 'served' as purpose, item_id, neighbour_id, served_similarity as similarity from similarity
                union all
                select 'holdout' as purpose, item_id, neighbour_id, holdout_similarity as similarity from similarity
            )
            where similarity > 0
            -- ties broken by the smaller item id, so the same data always keeps the same neighbours
            qualify row_number() over (partition by purpose, item_id order by similarity desc, neighbour_id) <= {neighbours}
        """

    yield pl.DataFrame(schema=SCHEMA)
    for bucket in range(buckets):
        dbt.progress("item pairs", bucket, buckets, unit="bucket")
        yield cur.sql(bucket_sql(bucket)).pl().cast(SCHEMA)
    dbt.progress("item pairs", buckets, buckets, unit="bucket", final=True)
    cur.execute("drop table knn_frequent")
    cur.execute("drop table knn_item_users")
