{#-
    NEWS2 for every plausible observation set, by the news2_scored macro the reference cases
    pin (int_news2_reference_cases_scored): the seven parameter scores (SpO2 on the patient's
    scale 1 or 2, supplemental oxygen, ACVPU), the total, the clinical response band and the
    alert. A view: fct_vitals scores only the sets its incremental run takes, and nothing is
    stored twice.
-#}
{{ config(materialized='view') }}

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
    {{ news2_scored(
        'vitals',
        respiration_rate='resp_rate',
        pulse_rate='heart_rate',
        temperature='temperature_c'
    ) }}
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
        total_score as news2_score,
        max_single_score as max_parameter_score,
        band as news2_band,
        is_alert,
        ingested_at
    from scored
)

select * from final
