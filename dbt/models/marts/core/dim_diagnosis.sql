with

icd10_codes as (
    select
        code,
        description,
        chapter_number,
        chapter_code_range,
        chapter_title
    from {{ ref('icd10_codes') }}
),

known as (
    select
        code as diagnosis_code,
        description as diagnosis_description,
        chapter_number,
        chapter_code_range,
        chapter_title,
        true as is_known_code
    from icd10_codes
),

-- Admissions whose code is blank or not in the ICD-10 subset point here rather than being
-- quarantined: the admission is real, the gap is in the reference data.
unknown as (
    select
        'UNKNOWN' as diagnosis_code,
        'Code missing or not in the ICD-10 reference subset' as diagnosis_description,
        cast(null as integer) as chapter_number,
        cast(null as text) as chapter_code_range,
        'Unknown' as chapter_title,
        false as is_known_code
),

unioned as (
    select
        diagnosis_code,
        diagnosis_description,
        chapter_number,
        chapter_code_range,
        chapter_title,
        is_known_code
    from known
    union all
    select
        diagnosis_code,
        diagnosis_description,
        chapter_number,
        chapter_code_range,
        chapter_title,
        is_known_code
    from unknown
),

final as (
    select
        cast(diagnosis_code as text) as diagnosis_code,
        cast(diagnosis_description as text) as diagnosis_description,
        cast(chapter_number as integer) as chapter_number,
        cast(chapter_code_range as text) as chapter_code_range,
        cast(chapter_title as text) as chapter_title,
        cast(is_known_code as boolean) as is_known_code
    from unioned
)

select
    diagnosis_code,
    diagnosis_description,
    chapter_number,
    chapter_code_range,
    chapter_title,
    is_known_code
from final
