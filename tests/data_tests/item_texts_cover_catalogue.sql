-- With var text.enabled, features.item_texts should give the encoder something to read: a
-- catalogue where no item has a title, genre or tag (only ids, as the Amazon Beauty log) has
-- no text, so ml.item_text_embeddings and text_knn are empty. Returns one row then (a warning:
-- the build goes on; set `text: {enabled: false}` for such a catalogue).
{{ config(severity='warn') }}
select
    count(*) as n_items,
    'text is on but no item of the catalogue has a title, genre or tag to encode' as problem
from {{ ref('items') }}
having count(*) > 0
    and {{ text_enabled() }}
    and (select count(*) from {{ ref('item_texts') }}) = 0
