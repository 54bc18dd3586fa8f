{#-
    Every distinct raw admission exactly once: de-duplicated to its latest version, typed with
    safe casts, and given a rejection reason when it cannot be typed. stg_admissions__admissions
    keeps the rows without a reason; quarantine.admissions_rejected keeps the others.
    Ephemeral: the staging and quarantine tables each read raw through it, once per build (a
    table of its own would be a third copy of raw, and views built on a table are dropped,
    cascade, whenever it is rebuilt alone).
-#}
{{ config(materialized='ephemeral') }}
{%- set hospital_timezone = var('hospital_timezone') -%}

with

committed_files as (
    {{ committed_files(source('raw_admissions', '_carehouse_files'), 'admissions') }}
),

source as (
    select
        admissions.admission_id,
        admissions.patient_id,
        admissions.admitted_at,
        admissions.discharged_at,
        admissions.department,
        admissions.admission_type,
        admissions.discharge_disposition,
        admissions.primary_diagnosis_code,
        admissions.total_charges,
        admissions.insurer_id,
        admissions._source_line,
        admissions._source_file_id,
        -- Per file, in the ledger: the file, its hash, its load and when it was ingested.
        committed_files.file_name as source_file_name,
        committed_files.content_sha256 as source_file_hash,
        committed_files.ingested_at,
        committed_files.load_id
    from {{ source('raw_admissions', 'admissions') }} as admissions
    -- Rows of an interrupted load match no committed file: invisible until rolled back.
    inner join committed_files
        on admissions._source_file_id = committed_files.file_id
),

departments as (
    select code from {{ ref('departments') }}
),

department_aliases as (
    select
        {{ normalize_department_name('alias') }} as department_alias,
        code
    from {{ ref('department_aliases') }}
),

icd10_codes as (
    select code from {{ ref('icd10_codes') }}
),

ranked as (
    select
        *,
        {{ admission_record_key() }} as record_key,
        -- A re-sent file or a corrected row supersedes what came before: the latest load
        -- wins, then the later file and line within one load.
        row_number() over (
            partition by {{ admission_record_key() }}
            order by
                ingested_at desc nulls last,
                source_file_name desc nulls last,
                _source_line desc nulls last
        ) as version_rank
    from source
),

latest as (
    select
        record_key,
        {{ clean_text('admission_id') }} as admission_id,
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_text('admitted_at') }} as admitted_at_text,
        {{ clean_text('discharged_at') }} as discharged_at_text,
        -- Padded, mixed-case or spaced names ('  general medicine') take the form of the code
        -- vocabulary (GENERAL_MEDICINE); known aliases (ER, Orthopedics) are mapped below.
        {{ normalize_department_name('department') }} as department_name,
        lower({{ clean_text('admission_type') }}) as admission_type,
        lower({{ clean_text('discharge_disposition') }}) as discharge_disposition,
        upper({{ clean_text('primary_diagnosis_code') }}) as primary_diagnosis_code,
        {{ clean_text('total_charges') }} as total_charges_text,
        coalesce(upper({{ clean_text('insurer_id') }}), 'SELF_PAY') as insurer_id,
        {{ clean_text('insurer_id') }} is null as is_insurer_missing,
        source_file_name,
        _source_line as source_line_number,
        source_file_hash,
        ingested_at,
        load_id,
        jsonb_build_object(
            'admission_id', admission_id,
            'patient_id', patient_id,
            'admitted_at', admitted_at,
            'discharged_at', discharged_at,
            'department', department,
            'admission_type', admission_type,
            'discharge_disposition', discharge_disposition,
            'primary_diagnosis_code', primary_diagnosis_code,
            'total_charges', total_charges,
            'insurer_id', insurer_id
        ) as raw_record
    from ranked
    where version_rank = 1
),

-- An alias maps to its code; a name that is already a code (or unknown) stays as it is.
mapped as (
    select
        latest.*,
        coalesce(department_aliases.code, latest.department_name) as department
    from latest
    left join department_aliases
        on latest.department_name = department_aliases.department_alias
),

typed as (
    select
        mapped.*,
        {{ safe_cast_timestamptz('admitted_at_text', hospital_timezone) }} as admitted_at,
        {{ safe_cast_timestamptz('discharged_at_text', hospital_timezone) }} as discharged_at,
        {{ safe_cast_numeric('total_charges_text', 12, 2) }} as total_charges,
        mapped.department in (select departments.code from departments) as is_known_department,
        mapped.primary_diagnosis_code in (
            select icd10_codes.code from icd10_codes
        ) as is_known_diagnosis_code
    from mapped
),

validated as (
    select
        *,
        -- The first rule a record breaks is its reason; the order puts identity first.
        case
            when admission_id is null then 'MISSING_ADMISSION_ID'
            when patient_id is null then 'MISSING_PATIENT_ID'
            when admitted_at is null then 'INVALID_DATE'
            when discharged_at_text is not null and discharged_at is null then 'INVALID_DATE'
            when discharged_at < admitted_at then 'INVALID_LOS'
            when department is null or not is_known_department then 'UNKNOWN_DEPARTMENT'
            when total_charges_text is not null and total_charges is null then 'INVALID_AMOUNT'
        end as rejection_reason
    from typed
),

final as (
    select
        record_key,
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        primary_diagnosis_code,
        coalesce(is_known_diagnosis_code, false) as is_known_diagnosis_code,
        total_charges,
        insurer_id,
        is_insurer_missing,
        admitted_at,
        discharged_at,
        {{ local_date('admitted_at', hospital_timezone) }} as admission_date,
        {{ local_date('discharged_at', hospital_timezone) }} as discharge_date,
        rejection_reason,
        raw_record,
        source_file_name,
        source_line_number,
        source_file_hash,
        ingested_at,
        load_id
    from validated
)

select * from final
