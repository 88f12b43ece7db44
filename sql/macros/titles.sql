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
