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
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from {{ ref('base_labs__observations') }}
    where rejection_reason is null
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
        interpretation_code,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from observations
)

select * from final
