with

results as (
    select
        loinc_code,
        effective_date,
        is_abnormal
    from {{ ref('fct_lab_results') }}
),

lab_tests as (
    select
        loinc_code,
        test_name
    from {{ ref('dim_lab_test') }}
),

weekly as (
    select
        loinc_code,
        -- Monday of the ISO week of the hospital-local effective date.
        cast(
            effective_date - cast(extract(isodow from effective_date) as integer) + 1 as date
        ) as iso_week_start_date,
        count(*) as results,
        count(*) filter (where is_abnormal) as abnormal_results
    from results
    group by
        loinc_code,
        cast(effective_date - cast(extract(isodow from effective_date) as integer) + 1 as date)
),

final as (
    select
        cast(weekly.iso_week_start_date as date) as iso_week_start_date,
        cast(extract(isoyear from weekly.iso_week_start_date) as integer) as iso_year,
        cast(extract(week from weekly.iso_week_start_date) as integer) as iso_week,
        cast(
            to_char(cast(weekly.iso_week_start_date as timestamp), 'IYYY-"W"IW') as text
        ) as iso_week_label,
        cast(weekly.loinc_code as text) as loinc_code,
        cast(lab_tests.test_name as text) as test_name,
        cast(weekly.results as bigint) as results,
        cast(weekly.abnormal_results as bigint) as abnormal_results,
        cast(
            round(100.0 * weekly.abnormal_results / weekly.results, 2) as numeric(5, 2)
        ) as abnormal_rate_pct
    from weekly
    -- Every staged result's code is in the seed (a relationships test checks it).
    left join lab_tests
        on weekly.loinc_code = lab_tests.loinc_code
)

select
    iso_week_start_date,
    iso_year,
    iso_week,
    iso_week_label,
    loinc_code,
    test_name,
    results,
    abnormal_results,
    abnormal_rate_pct
from final
