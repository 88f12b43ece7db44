{#
  The measures of an eval.metrics_history row as JSON, for comparing one build's row with the
  previous one: every column but the build's own (run id, time, watermark, checkpoint). A JSON
  merge patch with null drops a key; NULL measures compare equal, as a repeated point should.
#}
{% macro measures_json(row_alias) -%}
json_merge_patch(to_json({{ row_alias }}),
                 '{"run_id": null, "built_at": null, "data_watermark": null, "checkpoint_id": null}')
{%- endmacro %}
