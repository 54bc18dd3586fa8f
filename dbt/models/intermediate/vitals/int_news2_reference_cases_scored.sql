{#-
    The NEWS2 macros applied to the hand-written reference observation sets. The vitals
    staging model will apply the same macros to bedside observations; this model pins their
    behaviour on every band edge (see assert_news2_reference_cases_score_as_expected).
-#}
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

reference_cases as (
    select
        case_id,
        description,
        respiration_rate,
        spo2,
        spo2_scale,
        is_on_oxygen,
        systolic_bp,
        pulse_rate,
        consciousness,
        temperature
    from {{ ref('news2_reference_cases') }}
),

scored as (
    select
        case_id,
        description,
        respiration_rate,
        spo2,
        spo2_scale,
        is_on_oxygen,
        systolic_bp,
        pulse_rate,
        consciousness,
        temperature,
        {{ news2_respiration_score('respiration_rate') }} as respiration_score,
        {{ news2_spo2_score('spo2', 'spo2_scale', 'is_on_oxygen') }} as spo2_score,
        {{ news2_oxygen_score('is_on_oxygen') }} as oxygen_score,
        {{ news2_systolic_score('systolic_bp') }} as systolic_score,
        {{ news2_pulse_score('pulse_rate') }} as pulse_score,
        {{ news2_consciousness_score('consciousness') }} as consciousness_score,
        {{ news2_temperature_score('temperature') }} as temperature_score
    from reference_cases
),

totalled as (
    select
        *,
        {{ news2_total_score(parameter_scores) }} as total_score,
        {{ news2_max_single_score(parameter_scores) }} as max_single_score,
        {{ news2_is_alert(parameter_scores) }} as is_alert
    from scored
),

final as (
    select
        case_id,
        description,
        respiration_rate,
        spo2,
        spo2_scale,
        is_on_oxygen,
        systolic_bp,
        pulse_rate,
        consciousness,
        temperature,
        respiration_score,
        spo2_score,
        oxygen_score,
        systolic_score,
        pulse_score,
        consciousness_score,
        temperature_score,
        total_score,
        max_single_score,
        {{ news2_band('total_score', 'max_single_score') }} as band,
        is_alert
    from totalled
)

select * from final
