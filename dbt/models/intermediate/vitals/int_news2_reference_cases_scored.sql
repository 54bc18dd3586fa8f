{#-
    NEWS2 (the news2_scored macro) applied to the hand-written reference observation sets.
    int_vitals_news2_scored scores bedside observations with the same macro; this model pins
    its behaviour on every band edge (see assert_news2_reference_cases_score_as_expected).
-#}

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
    {{ news2_scored('reference_cases') }}
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
        band,
        is_alert
    from scored
)

select * from final
