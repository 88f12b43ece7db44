{{ config(materialized='view') }}
-- ml.item_embeddings in long format, one row per item and dimension, for BI tools that
-- cannot read array columns (Tableau, Power BI and Metabase through their drivers show a
-- FLOAT[d] as text or not at all).
select
    item_id,
    generate_subscripts(embedding, 1)::integer as dimension,
    unnest(embedding)::double as value
from {{ ref('item_embeddings') }}
