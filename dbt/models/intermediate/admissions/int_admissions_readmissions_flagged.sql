{%- set window_days = var('readmission_window_days') -%}

with

admissions as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        is_discharged
    from {{ ref('stg_admissions__admissions') }}
),

flagged as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        is_discharged,
        -- Same-day stay = 0 days: LOS counts calendar dates in the hospital timezone.
        discharge_date - admission_date as length_of_stay_days,
        -- Index: discharged alive, and not handed over to another acute hospital.
        (
            is_discharged
            and coalesce(discharge_disposition, '') not in ('died', 'transfer')
        ) as is_index_admission
    from admissions
),

readmissions as (
    select
        index_admission.admission_id,
        min(
            later_admission.admission_date - index_admission.discharge_date
        ) as days_to_readmission
    from flagged as index_admission
    inner join admissions as later_admission
        on
            index_admission.patient_id = later_admission.patient_id
            and index_admission.admission_id <> later_admission.admission_id
            -- Starts after the index stay ended, within the window counted in calendar days
            -- from the discharge date (day {{ window_days }} counts, the day after does not).
            and index_admission.discharged_at <= later_admission.admitted_at
            and index_admission.discharge_date + {{ window_days }}
            >= later_admission.admission_date
            -- Planned admissions are not readmissions; an unknown type counts as unplanned.
            and later_admission.admission_type is distinct from 'elective'
    where index_admission.is_index_admission
    group by index_admission.admission_id
),

final as (
    select
        flagged.admission_id,
        flagged.patient_id,
        flagged.department,
        flagged.admission_type,
        flagged.discharge_disposition,
        flagged.admitted_at,
        flagged.discharged_at,
        flagged.admission_date,
        flagged.discharge_date,
        flagged.is_discharged,
        flagged.length_of_stay_days,
        flagged.is_index_admission,
        readmissions.days_to_readmission,
        readmissions.admission_id is not null as is_readmitted
    from flagged
    left join readmissions
        on flagged.admission_id = readmissions.admission_id
)

select * from final
