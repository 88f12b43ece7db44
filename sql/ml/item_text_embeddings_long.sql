{{ config(materialized='view') }}
-- ml.item_text_embeddings in long format, one row per item and dimension, for BI tools that
-- cannot read array columns (Tableau, Power BI and Metabase through their drivers).
{{ long_format(ref('item_text_embeddings'), 'item_id', 'embedding') }}
