{#-
    NEWS2 for every plausible observation set, with the macros pinned by the reference cases
    (int_news2_reference_cases_scored): the seven parameter scores (SpO2 on the patient's
    scale 1 or 2, supplemental oxygen, ACVPU), the total, the clinical response band and the
    alert. A view: fct_vitals scores only the sets its incremental run takes, and nothing is
    stored twice.
-#}
{{ config(materialized='view') }}
{%- set parameter_scores = [
    'respiration_score',
    'spo2_score',
    'oxygen_score',
    'systolic_score',
    'pulse_score',
    'consciousness_score',
    'temperature_score',
] -%}

with

vitals as (
    select
        observation_set_id,
        device_id,
        patient_id,
        observed_at,
        heart_rate,
        resp_rate,
        systolic_bp,
        diastolic_bp,
        spo2,
        spo2_scale,
        is_on_oxygen,
        consciousness,
        temperature_c,
        ingested_at
    from {{ ref('stg_vitals__vitals') }}
),

scored as (
    select
        *,
        {{ news2_respiration_score('resp_rate') }} as respiration_score,
        {{ news2_spo2_score('spo2', 'spo2_scale', 'is_on_oxygen') }} as spo2_score,
        {{ news2_oxygen_score('is_on_oxygen') }} as oxygen_score,
        {{ news2_systolic_score('systolic_bp') }} as systolic_score,
        {{ news2_pulse_score('heart_rate') }} as pulse_score,
        {{ news2_consciousness_score('consciousness') }} as consciousness_score,
        {{ news2_temperature_score('temperature_c') }} as temperature_score
    from vitals
),

totalled as (
    select
        *,
        {{ news2_total_score(parameter_scores) }} as news2_score,
        {{ news2_max_single_score(parameter_scores) }} as max_parameter_score,
        {{ news2_is_alert(parameter_scores) }} as is_alert
    from scored
),

final as (
    select
        observation_set_id,
        device_id,
        patient_id,
        observed_at,
        heart_rate,
        resp_rate,
        systolic_bp,
        diastolic_bp,
        spo2,
        spo2_scale,
        is_on_oxygen,
        consciousness,
        temperature_c,
        respiration_score,
        spo2_score,
        oxygen_score,
        systolic_score,
        pulse_score,
        consciousness_score,
        temperature_score,
        news2_score,
        max_parameter_score,
        {{ news2_band('news2_score', 'max_parameter_score') }} as news2_band,
        is_alert,
        ingested_at
    from totalled
)

select * from final
