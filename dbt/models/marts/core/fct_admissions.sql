with

admissions as (
    select
        admission_id,
        patient_id,
        episode_id,
        department,
        admission_type,
        is_planned,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        is_discharged,
        length_of_stay_days,
        discharge_disposition,
        primary_diagnosis_code,
        is_known_diagnosis_code,
        total_charges,
        insurer_id,
        is_index_admission,
        is_readmitted,
        days_to_readmission
    from {{ ref('int_admissions_readmissions_flagged') }}
),

final as (
    select
        cast(admission_id as text) as admission_id,
        -- Pseudonymous: gold never carries the hospital patient number.
        cast({{ patient_key('patient_id') }} as text) as patient_key,
        cast(episode_id as text) as episode_id,
        cast(department as text) as department,
        cast(admission_type as text) as admission_type,
        cast(is_planned as boolean) as is_planned,
        cast(admitted_at as timestamptz) as admitted_at,
        cast(discharged_at as timestamptz) as discharged_at,
        cast(admission_date as date) as admission_date,
        cast(discharge_date as date) as discharge_date,
        cast(is_discharged as boolean) as is_discharged,
        cast(length_of_stay_days as integer) as los_days,
        cast(discharge_disposition as text) as discharge_disposition,
        cast(
            case when is_known_diagnosis_code then primary_diagnosis_code else 'UNKNOWN' end
            as text
        ) as primary_diagnosis_code,
        cast(primary_diagnosis_code as text) as source_diagnosis_code,
        cast(total_charges as numeric(12, 2)) as total_charges,
        -- The payer recorded on the admission itself. When the patient master's history
        -- (SCD2) lands, a point-in-time join on admitted_at replaces this column's source.
        cast(insurer_id as text) as insurer_id_at_admission,
        cast(is_index_admission as boolean) as is_index_admission,
        cast(is_readmitted as boolean) as is_readmitted_30d,
        cast(days_to_readmission as integer) as days_to_readmission
    from admissions
)

select
    admission_id,
    patient_key,
    episode_id,
    department,
    admission_type,
    is_planned,
    admitted_at,
    discharged_at,
    admission_date,
    discharge_date,
    is_discharged,
    los_days,
    discharge_disposition,
    primary_diagnosis_code,
    source_diagnosis_code,
    total_charges,
    insurer_id_at_admission,
    is_index_admission,
    is_readmitted_30d,
    days_to_readmission
from final
