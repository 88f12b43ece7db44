-- What the text encoder reads of each item (ml.item_text_embeddings): one line built from what
-- the catalogue knows, var text.fields of title, year, genres and tags, e.g.
--   "Alien (1979). Genres: Horror, Sci-Fi. Tags: aliens, space, ridley scott"
-- Tags are the item's var text.max_tags most used tags (by distinct users, then name) among the
-- taggings the 'holdout' purpose may see (features.fit_tags): the holdout lists and the language
-- model read these embeddings, so a tag given with a test event must not reach them. The served
-- lists use the same texts.
-- An item with nothing to say has no row, rather than a vector of noise: no genre, no tag, and
-- a title that is only its id ("item 17", "17", as in catalogues without content such as the
-- Amazon Beauty log). The data test item_texts_cover_catalogue warns when text is on and no
-- item has a text. With var text.enabled false the table is empty.
{%- set text = var('text', {}) or {} %}
{%- set fields = text.get('fields', ['title', 'year', 'genres', 'tags']) %}
{%- set max_tags = text.get('max_tags', 5) | int %}
with items as (
    select item_id, title, release_year, genres from {{ ref('items') }}
),

tag_counts as (
    select item_id, tag, count(distinct user_id) as n_users
    from {{ ref('fit_tags') }}
    where purpose = 'holdout'
    group by item_id, tag
),

top_tags as (
    select item_id, list(tag order by n_users desc, tag) as tags
    from (
        select *
        from tag_counts
        qualify row_number() over (partition by item_id order by n_users desc, tag) <= {{ max_tags }}
    )
    group by item_id
),

content as (
    select
        items.item_id,
        case
            when regexp_full_match(coalesce(items.title, ''), '\s*(item\s*)?#?\s*' || items.item_id::varchar || '\s*', 'i')
                then null
            else nullif(trim(items.title), '')
        end as title,
        items.release_year,
        items.genres,
        coalesce(top_tags.tags, []::varchar[]) as tags
    from items
    left join top_tags using (item_id)
),

texts as (
    select
        item_id,
        concat_ws('. ',
            {%- if 'title' in fields %}
            title || {% if 'year' in fields %}coalesce(' (' || release_year::varchar || ')', ''){% else %}''{% endif %},
            {%- elif 'year' in fields %}
            'Year ' || release_year::varchar,
            {%- endif %}
            {%- if 'genres' in fields %}
            case when len(genres) > 0 then 'Genres: ' || array_to_string(genres, ', ') end,
            {%- endif %}
            {%- if 'tags' in fields %}
            case when len(tags) > 0 then 'Tags: ' || array_to_string(tags, ', ') end,
            {%- endif %}
            null
        ) as text,
        title is not null
            {%- if 'genres' in fields %} or len(genres) > 0{% endif %}
            {%- if 'tags' in fields %} or len(tags) > 0{% endif %} as has_content
    from content
)

select item_id, text
from texts
where {{ text_enabled() }}
    and has_content
    and text <> ''
