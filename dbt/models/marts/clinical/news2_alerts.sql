{#-
    The alert list for the nursing station: every observation set whose NEWS2 raises an alert
    (total 5 or more, or a single parameter scoring 3), newest first. A view over fct_vitals,
    so it shows every set the last build scored; read it with its own order by (or rely on
    the view's: observed_at descending).
-#}
{{ config(materialized='view') }}

with

alerting as (
    select
        observation_set_id,
        patient_key,
        device_id,
        observed_at,
        news2_score,
        news2_band,
        max_parameter_score,
        respiration_score,
        spo2_score,
        oxygen_score,
        systolic_score,
        pulse_score,
        consciousness_score,
        temperature_score
    from {{ ref('fct_vitals') }}
    where is_alert
),

final as (
    select
        cast(observation_set_id as text) as observation_set_id,
        cast(patient_key as text) as patient_key,
        cast(device_id as text) as device_id,
        cast(observed_at as timestamptz) as observed_at,
        cast(news2_score as integer) as news2_score,
        cast(news2_band as text) as news2_band,
        cast(
            case
                when news2_score >= 5 then 'aggregate_score'
                else 'single_parameter'
            end as text
        ) as alert_reason,
        cast(respiration_score as integer) as respiration_score,
        cast(spo2_score as integer) as spo2_score,
        cast(oxygen_score as integer) as oxygen_score,
        cast(systolic_score as integer) as systolic_score,
        cast(pulse_score as integer) as pulse_score,
        cast(consciousness_score as integer) as consciousness_score,
        cast(temperature_score as integer) as temperature_score
    from alerting
)

select
    observation_set_id,
    patient_key,
    device_id,
    observed_at,
    news2_score,
    news2_band,
    alert_reason,
    respiration_score,
    spo2_score,
    oxygen_score,
    systolic_score,
    pulse_score,
    consciousness_score,
    temperature_score
from final
order by observed_at desc, observation_set_id asc
