-- Every hand-written NEWS2 reference case scores exactly as the RCP table says: each
-- parameter score, the total, the band and the alert. Returns the cases that disagree.
with

reference_cases as (
    select
        case_id,
        expected_respiration_score,
        expected_spo2_score,
        expected_oxygen_score,
        expected_systolic_score,
        expected_pulse_score,
        expected_consciousness_score,
        expected_temperature_score,
        expected_total_score,
        expected_band,
        expected_is_alert
    from {{ ref('news2_reference_cases') }}
),

scored as (
    select
        case_id,
        respiration_score,
        spo2_score,
        oxygen_score,
        systolic_score,
        pulse_score,
        consciousness_score,
        temperature_score,
        total_score,
        band,
        is_alert
    from {{ ref('int_news2_reference_cases_scored') }}
),

final as (
    select
        reference_cases.case_id,
        scored.total_score,
        reference_cases.expected_total_score,
        scored.band,
        reference_cases.expected_band,
        scored.case_id is null as is_missing
    from reference_cases
    left join scored
        on reference_cases.case_id = scored.case_id
    where
        scored.case_id is null
        or scored.respiration_score is distinct from reference_cases.expected_respiration_score
        or scored.spo2_score is distinct from reference_cases.expected_spo2_score
        or scored.oxygen_score is distinct from reference_cases.expected_oxygen_score
        or scored.systolic_score is distinct from reference_cases.expected_systolic_score
        or scored.pulse_score is distinct from reference_cases.expected_pulse_score
        or scored.consciousness_score
        is distinct from reference_cases.expected_consciousness_score
        or scored.temperature_score is distinct from reference_cases.expected_temperature_score
        or scored.total_score is distinct from reference_cases.expected_total_score
        or scored.band is distinct from reference_cases.expected_band
        or scored.is_alert is distinct from reference_cases.expected_is_alert
)

select
    case_id,
    is_missing,
    total_score,
    expected_total_score,
    band,
    expected_band
from final
