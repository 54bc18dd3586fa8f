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

insurers as (
    select
        admission_id,
        insurer_id_at_admission,
        insurer_source
    from {{ ref('int_admissions_insurers_attributed') }}
),

final as (
    select
        cast(admissions.admission_id as text) as admission_id,
        -- Pseudonymous: gold never carries the hospital patient number.
        cast({{ patient_key('admissions.patient_id') }} as text) as patient_key,
        cast(admissions.episode_id as text) as episode_id,
        cast(admissions.department as text) as department,
        cast(admissions.admission_type as text) as admission_type,
        cast(admissions.is_planned as boolean) as is_planned,
        cast(admissions.admitted_at as timestamptz) as admitted_at,
        cast(admissions.discharged_at as timestamptz) as discharged_at,
        cast(admissions.admission_date as date) as admission_date,
        cast(admissions.discharge_date as date) as discharge_date,
        cast(admissions.is_discharged as boolean) as is_discharged,
        cast(admissions.length_of_stay_days as integer) as los_days,
        cast(admissions.discharge_disposition as text) as discharge_disposition,
        cast(
            case
                when admissions.is_known_diagnosis_code then admissions.primary_diagnosis_code
                else 'UNKNOWN'
            end as text
        ) as primary_diagnosis_code,
        cast(admissions.primary_diagnosis_code as text) as source_diagnosis_code,
        cast(admissions.total_charges as numeric(12, 2)) as total_charges,
        -- The payer the patient had on the admission date (patient history), else the
        -- payer on the admission record, else SELF_PAY; insurer_source says which.
        cast(
            coalesce(insurers.insurer_id_at_admission, admissions.insurer_id, 'SELF_PAY') as text
        ) as insurer_id_at_admission,
        cast(coalesce(insurers.insurer_source, 'admission_record') as text) as insurer_source,
        cast(admissions.is_index_admission as boolean) as is_index_admission,
        cast(admissions.is_readmitted as boolean) as is_readmitted_30d,
        cast(admissions.days_to_readmission as integer) as days_to_readmission
    from admissions
    left join insurers
        on admissions.admission_id = insurers.admission_id
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
    insurer_source,
    is_index_admission,
    is_readmitted_30d,
    days_to_readmission
from final
