{#-
    The identity of one raw patient-master record: the trimmed patient_id (or the row's own key
    '<file id>:<line>' when the source left it blank) and the snapshot date it describes.
    Shared by the staging model and the reconciliation test so both count alike.
-#}
{%- macro patient_record_key(patient_id_column='patient_id', snapshot_date_column='_snapshot_date') -%}
    coalesce({{ clean_text(patient_id_column) }}, 'row:' || {{ raw_row_key() }})
    || '@' || to_char({{ snapshot_date_column }}, 'YYYY-MM-DD')
{%- endmacro -%}

{#-
    Administrative sex as F, M or U (unknown): trimmed and upper-cased, the words FEMALE and
    MALE as their letters; anything else, blank included, is U.
-#}
{%- macro standardize_sex(column) -%}
    case upper({{ clean_text(column) }})
        when 'F' then 'F'
        when 'FEMALE' then 'F'
        when 'M' then 'M'
        when 'MALE' then 'M'
        else 'U'
    end
{%- endmacro -%}

{#-
    Free text as typed into the master: trimmed, a line break (a quoted newline in the CSV) read
    as ', ', runs of spaces as one; null when nothing is left. Keeps a re-keyed line break from
    looking like a change of address.
-#}
{%- macro clean_free_text(column) -%}
    nullif(
        case
            -- Most values hold no line break, tab or double space: trimming is all they need,
            -- and two regular expressions per value and row were most of a staging build.
            when
                strpos({{ column }}, e'\n') = 0
                and strpos({{ column }}, e'\r') = 0
                and strpos({{ column }}, e'\t') = 0
                and strpos({{ column }}, '  ') = 0
                then trim({{ column }})
            else regexp_replace(
                regexp_replace(trim({{ column }}), '\s*[\r\n]+\s*', ', ', 'g'), '[ \t]+', ' ', 'g'
            )
        end,
        ''
    )
{%- endmacro -%}

{#- Completed years of age on a date (both SQL dates). -#}
{%- macro age_in_years(birth_date, on_date) -%}
    cast(extract(year from age(cast({{ on_date }} as timestamp), cast({{ birth_date }} as timestamp))) as integer)
{%- endmacro -%}

{#-
    Ten-year age band of an age in years: 0-9, 10-19, ..., 80-89, and 90+ for every age over
    89 (ages above 89 are never shown more precisely). Null when the age is unknown.
-#}
{%- macro age_band(age_years) -%}
    case
        when {{ age_years }} is null then null
        when {{ age_years }} >= 90 then '90+'
        else
            cast(({{ age_years }} / 10) * 10 as text) || '-' || cast(({{ age_years }} / 10) * 10 + 9 as text)
    end
{%- endmacro -%}

{#- The first characters of a postal code (3): a coarse area, never the full code. -#}
{%- macro postal_area(postal_code) -%}
    nullif(left(upper(replace({{ postal_code }}, ' ', '')), 3), '')
{%- endmacro -%}
