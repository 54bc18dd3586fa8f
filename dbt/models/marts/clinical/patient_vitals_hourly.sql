{%- set hospital_timezone = var('hospital_timezone') -%}
{%- set vitals = [
    'heart_rate', 'resp_rate', 'systolic_bp', 'diastolic_bp', 'spo2', 'temperature_c',
] -%}

with

observation_sets as (
    select
        patient_key,
        observed_at,
        {% for vital in vitals -%}
            {{ vital }},
        {% endfor -%}
        news2_score,
        is_alert
    from {{ ref('fct_vitals') }}
),

hourly as (
    select
        patient_key,
        -- The clock hour in the hospital's timezone (explicit: never the session's).
        {{ hour_start('observed_at', hospital_timezone) }} as hour_start_at,
        count(*) as observation_sets,
        {% for vital in vitals -%}
            min({{ vital }}) as min_{{ vital }},
            avg({{ vital }}) as avg_{{ vital }},
            max({{ vital }}) as max_{{ vital }},
        {% endfor -%}
        max(news2_score) as max_news2_score,
        count(*) filter (where is_alert) as alerting_observation_sets
    from observation_sets
    group by patient_key, {{ hour_start('observed_at', hospital_timezone) }}
),

final as (
    select
        cast(patient_key as text) as patient_key,
        cast(hour_start_at as timestamptz) as hour_start_at,
        cast(observation_sets as bigint) as observation_sets,
        {% for vital in vitals -%}
            cast(min_{{ vital }} as numeric) as min_{{ vital }},
            cast(round(avg_{{ vital }}, 2) as numeric(8, 2)) as avg_{{ vital }},
            cast(max_{{ vital }} as numeric) as max_{{ vital }},
        {% endfor -%}
        cast(max_news2_score as integer) as max_news2_score,
        cast(alerting_observation_sets as bigint) as alerting_observation_sets
    from hourly
)

select
    patient_key,
    hour_start_at,
    observation_sets,
    {% for vital in vitals -%}
        min_{{ vital }},
        avg_{{ vital }},
        max_{{ vital }},
    {% endfor -%}
    max_news2_score,
    alerting_observation_sets
from final
