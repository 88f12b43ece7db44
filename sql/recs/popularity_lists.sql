-- popularity: the items most users interacted with in the purpose's fit events, minus the
-- user's own history. The same ranking for everyone; score is the share of users. Lists are
-- list_length(purpose) long (sql/macros/lists.sql): var k served, max(var ks) for holdout.
with users as (
    select purpose, user_id, n_history from {{ ref('list_users') }}
),

popularity as (
    select purpose, item_id, user_share, popularity_rank from {{ ref('item_popularity') }}
),

history as (
    select purpose, user_id, item_id from {{ ref('fit_events') }}
),

-- a user's history can push at most n_history items out of the top, so length + n_history
-- candidates always leave K after the exclusion
candidates as (
    select users.purpose, users.user_id, popularity.item_id, popularity.user_share, popularity.popularity_rank
    from users
    join popularity
        on popularity.purpose = users.purpose
        and popularity.popularity_rank <= {{ list_length('users.purpose') }} + users.n_history
),

unseen as (
    select candidates.*
    from candidates
    anti join history using (purpose, user_id, item_id)
),

ranked as (
    select
        *,
        row_number() over (partition by purpose, user_id order by popularity_rank) as rank
    from unseen
    qualify rank <= {{ list_length('purpose') }}
)

select
    purpose,
    'popularity' as strategy,
    user_id,
    rank::integer as rank,
    item_id,
    user_share::double as score,
    false as is_exploration,
    'popular now' as reason
from ranked
