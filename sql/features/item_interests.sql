-- The interests each item belongs to, from whichever source the catalogue has (var
-- interests.source): 'genres' (staging.items.genres), 'clusters' (ml.item_clusters: clusters of
-- the LM's item embeddings, named by their most typical items) or 'auto' (the default): genres
-- when at least var interests.min_genre_share of the items carry one, else clusters. Every
-- reader of interests (features.fit_interests, new_interests, diversity, calibration,
-- exploration) reads this table; interest_type says which source it is ('genre' or 'cluster').
{%- set options = var('interests', {}) or {} %}
{%- set source = options.get('source', 'auto') %}
{%- set min_share = options.get('min_genre_share', 0.5) | float %}
with items as (
    select item_id, genres from {{ ref('items') }}
),

clusters as (
    select item_id, label from {{ ref('item_clusters') }}
),

genre_share as (
    select avg((len(genres) > 0)::integer) as share from items
),

chosen as (
    select
        {%- if source == 'genres' %}
        'genre' as interest_type
        {%- elif source == 'clusters' %}
        'cluster' as interest_type
        {%- else %}
        case when share >= {{ min_share }} then 'genre' else 'cluster' end as interest_type
        {%- endif %}
    from genre_share
)

select
    items.item_id,
    chosen.interest_type,
    case
        when chosen.interest_type = 'genre' then items.genres
        when clusters.label is null then []::varchar[]
        else [clusters.label]
    end as interests
from items
cross join chosen
left join clusters using (item_id)
