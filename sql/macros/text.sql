{#
  `true` or `false`: whether var text.enabled (project.yml) is on; true when unset, so
  `--vars '{text: {max_tags: 3}}'` keeps the encoder on. Use it in SQL:
    where {{ text_enabled() }}
  The other text settings' defaults are those of duckrec.ml.text.SETTINGS.
#}
{% macro text_enabled() -%}
{{ 'false' if (var('text', {}) or {}).get('enabled', true) is false else 'true' }}
{%- endmacro %}
