{#
  The start of the test period of split_rule temporal, as one row with one column
  cutoff_time: var('temporal_cutoff') or, when it is null, the 90th percentile of the event
  times of `events` (a relation with event_time). features.event_splits splits events at it
  and features.fit_tags hides the tags given from then on.
#}
{% macro temporal_cutoff(events) -%}
select {{ timestamp_var_or('temporal_cutoff', 'quantile_disc(event_time, 0.9)') }} as cutoff_time
from {{ events }}
{%- endmacro %}
