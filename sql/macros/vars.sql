{#
  A timestamp the user may set as a var, else one computed from the data: the var's value
  (cast to a timestamp) when var(`name`) is set, else the aggregate `data_default` (SQL,
  e.g. 'max(event_time)'). Use it as an aggregate select item:
    select {{ timestamp_var_or('as_of', 'max(event_time)') }} as as_of from events
  features.user_rfm_by_purpose (as_of) and the temporal split's cutoff (temporal_cutoff).
#}
{% macro timestamp_var_or(name, data_default) -%}
{%- if var(name, none) is none -%}
{{ data_default }}
{%- else -%}
any_value(cast('{{ var(name) }}' as timestamp))
{%- endif -%}
{%- endmacro %}
