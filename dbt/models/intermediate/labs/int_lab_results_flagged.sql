{#-
    Every staged lab result with the reference range it is judged against and its abnormal
    flags, computed from the data. The range is the observation's own referenceRange when it
    sent one (either bound; a missing bound is open), else the test's adult range from the
    loinc_tests seed. A result is abnormal when its value lies outside that range (bounds
    inclusive) or the lab flagged it H, L, HH or LL. A view: fct_lab_results flags only the
    results its incremental run takes.
-#}
{{ config(materialized='view') }}

with

observations as (
    select
        observation_id,
        status,
        loinc_code,
        patient_id,
        admission_id,
        effective_at,
        effective_date,
        issued_at,
        value_numeric,
        value_unit,
        reference_low,
        reference_high,
        interpretation_code,
        ingested_at
    from {{ ref('stg_labs__observations') }}
),

loinc_tests as (
    select
        loinc_code,
        reference_low,
        reference_high
    from {{ ref('loinc_tests') }}
),

ranged as (
    select
        observations.observation_id,
        observations.status,
        observations.loinc_code,
        observations.patient_id,
        observations.admission_id,
        observations.effective_at,
        observations.effective_date,
        observations.issued_at,
        observations.value_unit,
        observations.interpretation_code,
        observations.ingested_at,
        -- Trailing zeros of the raw numeric(38, 9) columns dropped; the values are unchanged.
        trim_scale(observations.value_numeric) as value_numeric,
        observations.reference_low is not null
        or observations.reference_high is not null as has_own_range,
        trim_scale(
            case
                when
                    observations.reference_low is not null
                    or observations.reference_high is not null
                    then observations.reference_low
                else loinc_tests.reference_low
            end
        ) as reference_low,
        trim_scale(
            case
                when
                    observations.reference_low is not null
                    or observations.reference_high is not null
                    then observations.reference_high
                else loinc_tests.reference_high
            end
        ) as reference_high
    from observations
    left join loinc_tests
        on observations.loinc_code = loinc_tests.loinc_code
),

flagged as (
    select
        *,
        case when has_own_range then 'observation' else 'loinc_tests' end as reference_range_source,
        coalesce(
            value_numeric < reference_low or value_numeric > reference_high, false
        ) as is_outside_reference_range,
        coalesce(interpretation_code in ('H', 'L', 'HH', 'LL'), false) as is_flagged_by_lab
    from ranged
),

final as (
    select
        observation_id,
        status,
        loinc_code,
        patient_id,
        admission_id,
        effective_at,
        effective_date,
        issued_at,
        value_numeric,
        value_unit,
        reference_low,
        reference_high,
        reference_range_source,
        interpretation_code,
        is_outside_reference_range,
        is_flagged_by_lab,
        ingested_at,
        is_outside_reference_range or is_flagged_by_lab as is_abnormal
    from flagged
)

select * from final
