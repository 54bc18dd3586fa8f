{%- set window_days = var('readmission_window_days') -%}

with

admissions as (
    select
        department,
        primary_diagnosis_code,
        admission_date,
        discharge_date,
        is_index_admission,
        is_readmitted_30d
    from {{ ref('fct_admissions') }}
),

data_range as (
    select greatest(max(admission_date), max(discharge_date)) as last_date
    from admissions
),

index_admissions as (
    select
        department,
        primary_diagnosis_code,
        discharge_date,
        is_readmitted_30d
    from admissions
    where is_index_admission
),

monthly as (
    select
        {{ month_start('discharge_date') }} as discharge_month,
        department,
        primary_diagnosis_code,
        count(*) as index_admissions,
        count(*) filter (where is_readmitted_30d) as readmissions
    from index_admissions
    group by {{ month_start('discharge_date') }}, department, primary_diagnosis_code
),

final as (
    select
        cast(monthly.discharge_month as date) as discharge_month,
        cast(monthly.department as text) as department,
        cast(monthly.primary_diagnosis_code as text) as primary_diagnosis_code,
        cast(monthly.index_admissions as bigint) as index_admissions,
        cast(monthly.readmissions as bigint) as readmissions,
        cast(
            round(100.0 * monthly.readmissions / monthly.index_admissions, 2) as numeric(5, 2)
        ) as readmission_rate_pct,
        -- Every index discharge of the month has had its full follow-up window in the data:
        -- the month's last day plus the window is not after the last data day.
        (
            cast(monthly.discharge_month + interval '1 month' - interval '1 day' as date)
            + {{ window_days }}
            <= data_range.last_date
        ) as is_follow_up_complete
    from monthly
    cross join data_range
)

select
    discharge_month,
    department,
    primary_diagnosis_code,
    index_admissions,
    readmissions,
    readmission_rate_pct,
    is_follow_up_complete
from final
