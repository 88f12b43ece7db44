-- Every list's ranks are 1..n without gaps or repeats, each item once, and n is its
-- purpose's list length (var k served, max(var ks) holdout: list_length in
-- sql/macros/lists.sql) unless the catalogue minus the user's history holds fewer items.
-- Checked on both published unions, so every strategy added to them is checked too.
with lists as (
    select 'served' as purpose, strategy, user_id, rank, item_id from {{ ref('recommendations') }}
    union all
    select 'holdout' as purpose, strategy, user_id, rank, item_id from {{ ref('holdout_recommendations') }}
),

catalogue as (
    select count(*) as n_items from {{ ref('items') }}
),

per_list as (
    select
        purpose,
        strategy,
        user_id,
        count(*) as n_slots,
        count(distinct rank) as n_ranks,
        count(distinct item_id) as n_items,
        min(rank) as min_rank,
        max(rank) as max_rank
    from lists
    group by purpose, strategy, user_id
)

select per_list.*, list_users.n_history
from per_list
cross join catalogue
left join {{ ref('list_users') }} list_users using (purpose, user_id)
where per_list.min_rank <> 1
    or per_list.max_rank <> per_list.n_slots
    or per_list.n_ranks <> per_list.n_slots
    or per_list.n_items <> per_list.n_slots
    or per_list.n_slots > {{ list_length('per_list.purpose') }}
    or per_list.n_slots < least({{ list_length('per_list.purpose') }}, catalogue.n_items - coalesce(list_users.n_history, 0))
