-- The lists served to users: every strategy's 'served' lists, built from each user's full
-- history, ranks 1..var('k'). Strategies are listed once, in recs/strategy_lists.sql.
with strategy_lists as (
    select * from {{ ref('strategy_lists') }}
)

{{ public_list_columns('strategy_lists', 'served') }}
