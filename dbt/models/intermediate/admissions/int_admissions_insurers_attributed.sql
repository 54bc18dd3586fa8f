{#-
    The payer of each admission at the time of the admission: a point-in-time join of the
    admission's hospital-local admission date against the patient's history
    (int_patients_history: valid_from <= admission_date < valid_to, a version that is not a
    deletion). Without such a version (the patient is not in the master, was dropped from it,
    or the admission predates the first snapshot) the payer on the admission record is used;
    when that was blank too, SELF_PAY. insurer_source says which one won.
-#}

with

admissions as (
    select
        admission_id,
        patient_id,
        admission_date,
        insurer_id,
        is_insurer_missing
    from {{ ref('stg_admissions__admissions') }}
),

patient_versions as (
    select
        patient_id,
        valid_from,
        valid_to,
        insurer_id,
        plan
    from {{ ref('int_patients_history') }}
    where not is_deleted
),

joined as (
    select
        admissions.admission_id,
        admissions.patient_id,
        admissions.admission_date,
        admissions.insurer_id as record_insurer_id,
        admissions.is_insurer_missing,
        patient_versions.insurer_id as history_insurer_id,
        patient_versions.plan as history_plan,
        patient_versions.valid_from as history_valid_from,
        patient_versions.patient_id is not null as has_history_version
    from admissions
    -- Versions of one patient never overlap (tested), so this matches at most one.
    left join patient_versions
        on
            admissions.patient_id = patient_versions.patient_id
            and admissions.admission_date >= patient_versions.valid_from
            and admissions.admission_date < patient_versions.valid_to
),

final as (
    select
        admission_id,
        patient_id,
        admission_date,
        record_insurer_id,
        history_insurer_id,
        history_valid_from,
        history_plan as plan_at_admission,
        case
            when has_history_version then history_insurer_id
            when not coalesce(is_insurer_missing, false) then record_insurer_id
            else 'SELF_PAY'
        end as insurer_id_at_admission,
        case
            when has_history_version then 'patient_history'
            when not coalesce(is_insurer_missing, false) then 'admission_record'
            else 'self_pay_default'
        end as insurer_source
    from joined
)

select * from final
