"""A tiny project for the docs site tests: two seeds, SQL views and tables, a Python model,
generic and singular tests, and a result page with one chart of each kind."""
from __future__ import annotations

TINY = {
    "project.yml": """
        name: tinydocs
        targets:
          dev: {warehouse: warehouse.duckdb}
        vars:
          k: 2
        models:
          +persist_docs: {relation: true, columns: true}
          staging: {+schema: staging, +materialized: view}
          marts: {+schema: marts, +materialized: table}
        seeds:
          +persist_docs: {relation: true, columns: true}
          events:
            +column_types: {user_id: BIGINT, item_id: BIGINT, day: INTEGER, score: DOUBLE}
    """,
    "seeds/events.csv": """
        user_id,item_id,day,score
        1,10,1,0.5
        1,11,2,0.7
        2,10,1,0.2
        2,12,3,0.9
        3,11,2,0.4
    """,
    "seeds/items.csv": """
        item_id,title
        10,"Matrix, The"
        11,Heat
        12,Up
    """,
    "sql/staging/stg_events.sql": """
        select user_id, item_id, day, score from {{ ref('events') }}
    """,
    "sql/marts/item_scores.sql": """
        select i.item_id, i.title, count(e.user_id) as n_users, avg(e.score) as mean_score
        from {{ ref('items') }} i left join {{ ref('stg_events') }} e using (item_id)
        group by all
    """,
    "sql/marts/daily.sql": """
        select day, count(*) as events, sum(score) as total_score from {{ ref('stg_events') }} group by day
    """,
    "python_models/marts/user_totals.py": """
        import polars as pl

        def model(dbt, session):
            dbt.config(materialized="table")
            events = dbt.ref("stg_events").pl()
            return events.group_by("user_id").agg(pl.len().alias("n_events"), pl.col("score").sum().alias("total"))
    """,
    "models/props.yml": """
        version: 2
        seeds:
          - name: events
            description: Raw events, one per user and item.
        models:
          - name: stg_events
            description: Events, cleaned.
            columns:
              - name: user_id
                description: The user.
                data_tests: [not_null]
          - name: item_scores
            description: One row per item with its users and mean score.
            columns:
              - name: item_id
                description: The item.
                data_tests: [unique, not_null]
              - name: title
                description: The title as the file has it.
              - name: mean_score
                description: Mean score; NULL for an item nobody scored.
          - name: user_totals
            description: Events and total score per user.
            columns:
              - name: user_id
                description: The user.
                data_tests:
                  - not_null
                  - relationships: {to: ref('stg_events'), field: user_id}
    """,
    "tests/data_tests/daily_positive.sql": """
        select * from {{ ref('daily') }} where events <= 0
    """,
    "reports/overview.yml": """
        title: Overview
        description: One chart of each kind.
        charts:
          - title: Events per day
            kind: bar
            sql: select day::varchar as day, events from {{ ref('daily') }} order by day
            x: day
            y: events
            y_label: events
          - title: Users per item
            kind: barh
            sql: select title, n_users from {{ ref('item_scores') }} order by n_users desc
            x: title
            y: n_users
            y_label: users
          - title: Score over days (K = {{ var('k') }})
            kind: line
            sql: select day, total_score, events from {{ ref('daily') }} order by day
            x: day
            y: [total_score, events]
            x_label: day
            y_label: score and events
          - title: Events against total score
            kind: scatter
            sql: select user_id::varchar as user_name, n_events, total from {{ ref('user_totals') }}
            x: n_events
            y: total
            label: user_name
            y_format: percent
          - title: Not there yet
            kind: line
            sql: select * from {{ ref('history_that_does_not_exist') }}
            x: a
            y: b
        tables:
          - title: Items
            sql: select * from {{ ref('item_scores') }} order by item_id
    """,
}

# TINY and a page that draws what used to read wrong: crowded point labels, K as text
# ("K = 10" before "K = 5"), a line whose rows come out of x order, a long y label, and a
# history appended by every build (kept only when it changed, as eval.metrics_history does).
CHECKS = {
    **TINY,
    "sql/marts/score_history.sql": """
        {{ config(materialized='incremental', incremental_strategy='append') }}
        with now as (select '{{ invocation_id }}' as run_id, '{{ run_started_at }}'::timestamp as built_at,
                            sum(score) as total_score from {{ ref('stg_events') }})
        select * from now
        {% if is_incremental() %}
        where total_score is distinct from (select total_score from {{ this }} order by built_at desc limit 1)
        {% endif %}
    """,
    "reports/checks.yml": """
        title: Checks
        charts:
          - title: Crowded labels
            kind: line
            sql: >
              select * from (values
                ('a', '0.0 *', 0.230, 0.0817), ('a', '0.1', 0.231, 0.0816), ('a', '0.2', 0.233, 0.0812),
                ('b', '0.0', 0.2305, 0.0817), ('b', '0.2', 0.2315, 0.0815), ('b', '0.4', 0.234, 0.0811),
                ('c', 'lm', 0.2302, 0.0818), ('c', '0.5', 0.2320, 0.0814), ('c', '0.9', 0.2330, 0.0813),
                ('c', 'far', 0.3000, 0.0700))
              t(strategy, setting, coverage, ndcg)
            x: coverage
            y: ndcg
            series: strategy
            label: setting
            x_format: percent
            y_label: hit rate@K (share of users whose test item is in the list, 0 to 1)
          - title: Hit rate per K
            kind: bar
            sql: >
              select strategy, 'K = ' || k as k, hit_rate from (values ('x', 10, 0.2), ('x', 20, 0.3), ('x', 5, 0.1),
                ('y', 10, 0.25), ('y', 20, 0.35), ('y', 5, 0.15)) t(strategy, k, hit_rate) order by strategy, 2
            x: strategy
            y: hit_rate
            series: k
          - title: Out of order
            kind: line
            sql: select * from (values (3, 0.3), (1, 0.1), (2, 0.5), (5, 0.2), (4, 0.4)) t(x, y)
            x: x
            y: y
          - title: History
            kind: line
            sql: select built_at, total_score from {{ ref('score_history') }} order by built_at
            x: built_at
            y: total_score
    """,
}
