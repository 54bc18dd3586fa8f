{#-
    Midnight census per department per day. A stay occupies a bed on every day from its
    admission date up to the day before its discharge date (the admission day counts, the
    discharge day does not), so a same-day stay occupies none and a stay's bed-days equal its
    LOS. A stay still in hospital occupies a bed up to and including the last data day.
-#}

with

admissions as (
    select
        patient_key,
        department,
        admission_date,
        discharge_date
    from {{ ref('fct_admissions') }}
),

departments as (
    select
        department,
        bed_capacity
    from {{ ref('dim_department') }}
),

calendar as (
    select calendar_date
    from {{ ref('dim_date') }}
),

data_range as (
    select
        min(admission_date) as first_date,
        greatest(max(admission_date), max(discharge_date)) as last_date
    from admissions
),

census_days as (
    select calendar.calendar_date as census_date
    from calendar
    inner join data_range
        on calendar.calendar_date between data_range.first_date and data_range.last_date
),

-- One row per stay and night in a bed: from the admission date to the day before the
-- discharge date, or to the last data day while the patient is still in hospital.
bed_days as (
    select
        admissions.patient_key,
        admissions.department,
        cast(bed_day as date) as census_date
    from admissions
    cross join data_range
    cross join lateral generate_series(
        cast(admissions.admission_date as timestamp),
        cast(coalesce(admissions.discharge_date - 1, data_range.last_date) as timestamp),
        interval '1 day'
    ) as bed_day
),

occupied as (
    select
        census_date,
        department,
        count(distinct patient_key) as occupied_beds
    from bed_days
    group by census_date, department
),

-- Every department on every day of the data, so a day with no patient is a 0, not a gap.
grid as (
    select
        census_days.census_date,
        departments.department,
        departments.bed_capacity
    from census_days
    cross join departments
),

final as (
    select
        cast(grid.census_date as date) as census_date,
        cast(grid.department as text) as department,
        cast(coalesce(occupied.occupied_beds, 0) as integer) as occupied_beds,
        cast(grid.bed_capacity as integer) as available_beds,
        cast(
            round(100.0 * coalesce(occupied.occupied_beds, 0) / nullif(grid.bed_capacity, 0), 2)
            as numeric(7, 2)
        ) as occupancy_pct,
        coalesce(occupied.occupied_beds, 0) > grid.bed_capacity as is_over_capacity
    from grid
    left join occupied
        on
            grid.census_date = occupied.census_date
            and grid.department = occupied.department
)

select
    census_date,
    department,
    occupied_beds,
    available_beds,
    occupancy_pct,
    is_over_capacity
from final
