with

admissions as (
    select
        department,
        discharge_date,
        los_days
    from {{ ref('fct_admissions') }}
    where is_discharged
),

monthly as (
    select
        department,
        {{ month_start('discharge_date') }} as discharge_month,
        count(*) as discharges,
        avg(los_days) as mean_los_days,
        stddev_samp(los_days) as stddev_los_days,
        min(los_days) as min_los_days,
        max(los_days) as max_los_days,
        percentile_cont(0.5) within group (order by los_days) as median_los_days,
        count(*) filter (where los_days = 0) as same_day_stays,
        count(*) filter (where los_days >= 7) as stays_7_plus_days,
        count(*) filter (where los_days >= 14) as stays_14_plus_days,
        count(*) filter (where los_days >= 21) as stays_21_plus_days
    from admissions
    group by department, {{ month_start('discharge_date') }}
),

final as (
    select
        cast(department as text) as department,
        cast(discharge_month as date) as discharge_month,
        cast(discharges as bigint) as discharges,
        cast(round(mean_los_days, 2) as numeric(10, 2)) as mean_los_days,
        cast(round(stddev_los_days, 2) as numeric(10, 2)) as stddev_los_days,
        cast(min_los_days as integer) as min_los_days,
        cast(max_los_days as integer) as max_los_days,
        cast(round(cast(median_los_days as numeric), 2) as numeric(10, 2)) as median_los_days,
        cast(same_day_stays as bigint) as same_day_stays,
        cast(stays_7_plus_days as bigint) as stays_7_plus_days,
        cast(stays_14_plus_days as bigint) as stays_14_plus_days,
        cast(stays_21_plus_days as bigint) as stays_21_plus_days
    from monthly
)

select
    department,
    discharge_month,
    discharges,
    mean_los_days,
    stddev_los_days,
    min_los_days,
    max_los_days,
    median_los_days,
    same_day_stays,
    stays_7_plus_days,
    stays_14_plus_days,
    stays_21_plus_days
from final
