with

admissions as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        primary_diagnosis_code,
        is_known_diagnosis_code,
        total_charges,
        insurer_id,
        is_insurer_missing,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from {{ ref('base_admissions__admissions') }}
    where rejection_reason is null
),

final as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        primary_diagnosis_code,
        is_known_diagnosis_code,
        total_charges,
        insurer_id,
        is_insurer_missing,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id,
        discharged_at is not null as is_discharged
    from admissions
)

select * from final
