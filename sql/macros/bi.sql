{#
  A MovieLens-style catalogue title in natural order: "Matrix, The" -> "The Matrix",
  "Auberge espagnole, L'" -> "L'Auberge espagnole", "City of Lost Children, The (Cité des
  enfants perdus, La)" -> "The City of Lost Children (Cité des enfants perdus, La)".
  Only a trailing article (before an optional bracketed alternative title) moves.
#}
{% macro natural_title(title) -%}
regexp_replace(
    regexp_replace({{ title }},
        '^(.+?), (The|A|An|Les|La|Le|Il|Lo|Gli|Das|Der|Die|Den|Det|De|Het|El|Los|Las|Un|Une)( \(.*\))?$', '\2 \1\3'),
    '^(.+?), (L'')( \(.*\))?$', '\2\1\3')
{%- endmacro %}


{#
  An array column in long format, one row per id and position, for BI tools that cannot read
  arrays: (id_column, dimension 1..d, value).
#}
{% macro long_format(relation, id_column, array_column) -%}
select
    {{ id_column }},
    generate_subscripts({{ array_column }}, 1)::integer as dimension,
    unnest({{ array_column }})::double as value
from {{ relation }}
{%- endmacro %}
