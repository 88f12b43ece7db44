-- One row per catalogue item. MovieLens titles carry the release year in brackets
-- ("Toy Story (1995)", "Babylon 5 (1994-1998)"); it is split off into release_year.
with movies as (
    select
        "movieId" as item_id,
        trim("title") as original_title,
        trim("genres") as genre_text
    from {{ ref('movies') }}
    where "movieId" is not null
),

-- a file with a repeated movieId keeps its first title in alphabetical order, so builds agree
deduplicated as (
    select *
    from movies
    qualify row_number() over (partition by item_id order by original_title, genre_text) = 1
),

parsed as (
    select
        item_id,
        original_title,
        nullif(trim(regexp_replace(original_title, '\s*\((\d{4})(?:[-–]\d{4})?\)\s*$', '')), '') as clean_title,
        try_cast(nullif(regexp_extract(original_title, '\((\d{4})(?:[-–]\d{4})?\)\s*$', 1), '') as integer) as release_year,
        case
            when genre_text is null or genre_text = '' or genre_text = '(no genres listed)' then []::varchar[]
            else list_filter(list_transform(string_split(genre_text, '|'), lambda g: trim(g)), lambda g: g <> '')
        end as genres
    from deduplicated
)

select
    item_id,
    coalesce(clean_title, original_title) as title,
    release_year,
    -- a genre listed twice counts once; the file's order is kept
    list_filter(genres, lambda g, i: list_position(genres, g) = i)::varchar[] as genres,
    original_title
from parsed
