-- The lists scored by eval.*: every strategy's 'holdout' lists, built without the users'
-- test events, for users that have one. Strategies are listed once, in recs/strategy_lists.sql.
with strategy_lists as (
    select * from {{ ref('strategy_lists') }}
)

{{ public_list_columns('strategy_lists', 'holdout') }}
