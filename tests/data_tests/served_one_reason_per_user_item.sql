-- recs.served_recommendations gives one reason per user and item: an item that several
-- strategies serve to the same user is explained the same way in each of them. Fails with
-- each user and item that has more than one reason, and the reasons.
select user_id, item_id, count(distinct reason) as n_reasons, string_agg(distinct reason, ' | ') as reasons
from {{ ref('served_recommendations') }}
group by user_id, item_id
having count(distinct reason) > 1
