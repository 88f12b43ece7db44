{#
  The newest checkpoint of ml.lm_checkpoints, as one row (checkpoint_id): the order every
  reader of the table uses (duckrec.ml.score.CHECKPOINT_ORDER in Python), newest first with
  the id breaking a tie.
#}
{% macro latest_checkpoint(checkpoints) -%}
select checkpoint_id from {{ checkpoints }} order by trained_at desc, checkpoint_id desc limit 1
{%- endmacro %}
