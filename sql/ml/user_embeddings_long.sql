{{ config(materialized='view') }}
-- ml.user_embeddings in long format, one row per user and dimension, for BI tools that
-- cannot read array columns (Tableau, Power BI and Metabase through their drivers).
{{ long_format(ref('user_embeddings'), 'user_id', 'embedding') }}
