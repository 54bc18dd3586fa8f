{%- set margin_years = var('date_spine_margin_years') -%}

with

admissions as (
    select
        admission_date,
        discharge_date
    from {{ ref('int_admissions_readmissions_flagged') }}
),

data_range as (
    select
        -- Whole calendar years around the data; the current year when there is no data yet.
        cast(
            date_trunc('year', cast(coalesce(min(admission_date), current_date) as timestamp))
            - interval '{{ margin_years }} year' as date
        ) as first_date,
        cast(
            date_trunc(
                'year',
                cast(
                    coalesce(greatest(max(admission_date), max(discharge_date)), current_date)
                    as timestamp
                )
            )
            + interval '{{ margin_years + 1 }} year' - interval '1 day' as date
        ) as last_date
    from admissions
),

spine as (
    select cast(calendar_day as date) as calendar_date
    from data_range
    cross join
        generate_series(
            cast(first_date as timestamp),
            cast(last_date as timestamp),
            interval '1 day'
        ) as calendar_day
),

final as (
    select
        calendar_date,
        cast(extract(year from calendar_date) as integer) as calendar_year,
        cast(extract(quarter from calendar_date) as integer) as calendar_quarter,
        cast(extract(month from calendar_date) as integer) as calendar_month,
        cast(extract(day from calendar_date) as integer) as day_of_month,
        cast(extract(isoyear from calendar_date) as integer) as iso_year,
        cast(extract(week from calendar_date) as integer) as iso_week,
        cast(extract(isodow from calendar_date) as integer) as iso_day_of_week,
        cast(to_char(cast(calendar_date as timestamp), 'FMDay') as text) as day_name,
        cast(to_char(cast(calendar_date as timestamp), 'FMMonth') as text) as month_name,
        cast(to_char(cast(calendar_date as timestamp), 'YYYY-MM') as text) as month_label,
        cast(to_char(cast(calendar_date as timestamp), 'YYYY-"Q"Q') as text) as quarter_label,
        cast(to_char(cast(calendar_date as timestamp), 'IYYY-"W"IW') as text) as iso_week_label,
        {{ month_start('calendar_date') }} as month_start_date,
        cast(
            calendar_date - cast(extract(isodow from calendar_date) as integer) + 1 as date
        ) as iso_week_start_date,
        extract(isodow from calendar_date) in (6, 7) as is_weekend
    from spine
)

select
    calendar_date,
    calendar_year,
    calendar_quarter,
    calendar_month,
    day_of_month,
    iso_year,
    iso_week,
    iso_day_of_week,
    day_name,
    month_name,
    month_label,
    quarter_label,
    iso_week_label,
    month_start_date,
    iso_week_start_date,
    is_weekend
from final
