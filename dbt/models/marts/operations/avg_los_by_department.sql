with

admissions as (
    select
        admission_id,
        patient_id,
        department,
        admission_date,
        length_of_stay_days,
        is_index_admission,
        is_readmitted
    from {{ ref('int_admissions_readmissions_flagged') }}
),

monthly as (
    select
        department,
        {{ month_start('admission_date') }} as admission_month,
        count(*) as total_admissions,
        count(distinct patient_id) as unique_patients,
        -- Aggregates over LOS skip admissions still in hospital (LOS is null).
        count(length_of_stay_days) as discharged_admissions,
        avg(length_of_stay_days) as avg_los_days,
        stddev_samp(length_of_stay_days) as stddev_los_days,
        min(length_of_stay_days) as min_los_days,
        max(length_of_stay_days) as max_los_days,
        count(*) filter (where is_index_admission) as index_admissions,
        count(*) filter (where is_readmitted) as readmission_count
    from admissions
    group by department, {{ month_start('admission_date') }}
),

rolling as (
    select
        *,
        -- By month value, not row count: a department with no admissions in a month has no
        -- row for it, and that gap must not pull an older month into the window.
        avg(avg_los_days) over (
            partition by department
            order by admission_month
            range between interval '2 months' preceding and current row
        ) as rolling_3m_avg_los_days
    from monthly
),

final as (
    select
        cast(department as text) as department,
        cast(admission_month as date) as admission_month,
        cast(total_admissions as bigint) as total_admissions,
        cast(unique_patients as bigint) as unique_patients,
        cast(round(avg_los_days, 2) as numeric(10, 2)) as avg_los_days,
        cast(round(stddev_los_days, 2) as numeric(10, 2)) as stddev_los_days,
        cast(min_los_days as integer) as min_los_days,
        cast(max_los_days as integer) as max_los_days,
        cast(readmission_count as bigint) as readmission_count,
        cast(
            round(100.0 * readmission_count / nullif(index_admissions, 0), 2) as numeric(5, 2)
        ) as readmission_rate_pct,
        cast(round(rolling_3m_avg_los_days, 2) as numeric(10, 2)) as rolling_3m_avg_los_days,
        cast(discharged_admissions as bigint) as discharged_admissions,
        cast(index_admissions as bigint) as index_admissions
    from rolling
)

select
    department,
    admission_month,
    total_admissions,
    unique_patients,
    avg_los_days,
    stddev_los_days,
    min_los_days,
    max_los_days,
    readmission_count,
    readmission_rate_pct,
    rolling_3m_avg_los_days,
    discharged_admissions,
    index_admissions
from final
