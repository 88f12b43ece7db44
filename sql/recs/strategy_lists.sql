-- Every strategy's lists, both purposes, in one place: recs.recommendations keeps the
-- 'served' rows, eval.holdout_recommendations the 'holdout' rows.
-- A new strategy is one model file (its <name>_lists with the list columns) and one line below.
-- `union all by name`: a column only some strategies have (lm_explore_lists.probed_interest)
-- is null for the others.
{{ config(materialized='ephemeral') }}
{%- set strategies = [
    ref('popularity_lists'),
    ref('item_knn_lists'),
    ref('markov_lists'),
    ref('new_in_genre_lists'),
    ref('lm_lists'),
    ref('lm_neural_lists'),
    ref('lm_mmr_lists'),
    ref('lm_calibrated_lists'),
    ref('lm_explore_lists'),
] %}
{%- if text_enabled() == 'true' %}{% set strategies = strategies + [ref('text_knn_lists')] %}{% endif %}
{% for list_model in strategies %}
select * from {{ list_model }}
{%- if not loop.last %}
union all by name
{%- endif %}
{%- endfor %}
