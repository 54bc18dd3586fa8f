with

admissions as (
    select
        admission_date,
        primary_diagnosis_code
    from {{ ref('fct_admissions') }}
),

diagnoses as (
    select
        diagnosis_code,
        chapter_number,
        chapter_code_range,
        chapter_title
    from {{ ref('dim_diagnosis') }}
),

daily as (
    select
        admission_date,
        primary_diagnosis_code,
        count(*) as admissions
    from admissions
    group by admission_date, primary_diagnosis_code
),

shares as (
    select
        *,
        sum(admissions) over (partition by admission_date) as day_admissions
    from daily
),

final as (
    select
        cast(shares.admission_date as date) as admission_date,
        cast(diagnoses.chapter_number as integer) as chapter_number,
        cast(diagnoses.chapter_code_range as text) as chapter_code_range,
        cast(diagnoses.chapter_title as text) as chapter_title,
        cast(shares.primary_diagnosis_code as text) as primary_diagnosis_code,
        cast(shares.admissions as bigint) as admissions,
        cast(shares.day_admissions as bigint) as day_admissions,
        cast(
            round(100.0 * shares.admissions / shares.day_admissions, 2) as numeric(5, 2)
        ) as share_of_day_pct
    from shares
    -- Every code of fct_admissions is in dim_diagnosis (a relationships test checks it).
    left join diagnoses
        on shares.primary_diagnosis_code = diagnoses.diagnosis_code
)

select
    admission_date,
    chapter_number,
    chapter_code_range,
    chapter_title,
    primary_diagnosis_code,
    admissions,
    day_admissions,
    share_of_day_pct
from final
