{#-
    Every distinct raw patient-master record exactly once: one per patient per snapshot date
    (the latest row of a committed load when the master sent it twice), typed with safe casts
    and given a rejection reason when it cannot be used. stg_patients__patients keeps the rows
    without a reason; quarantine.patients_rejected keeps the others. Ephemeral, like
    base_admissions__admissions: both tables read raw through it, once per build.
-#}
{{ config(materialized='ephemeral') }}
{%- set hospital_timezone = var('hospital_timezone') -%}

with

committed_files as (
    {{ committed_files(raw_relation('raw_patients', '_carehouse_files'), 'patients') }}
),

source as (
    select
        patients.patient_id,
        patients.given_name,
        patients.family_name,
        patients.birth_date,
        patients.sex,
        patients.address_line,
        patients.postal_code,
        patients.insurer_id,
        patients.plan,
        patients.updated_at,
        patients._snapshot_date,
        patients._source_line,
        patients._source_file_id,
        -- Per file, in the ledger: the file, its load and when it was ingested.
        committed_files.file_name as source_file_name,
        committed_files.ingested_at,
        committed_files.load_id
    from {{ raw_relation('raw_patients', 'patients') }} as patients
    -- Rows of an interrupted load match no committed file: invisible until rolled back.
    inner join committed_files
        on patients._source_file_id = committed_files.file_id
),

ranked as (
    select
        *,
        {{ patient_record_key() }} as record_key,
        -- A duplicated row, or a corrected file for the same day, supersedes what came
        -- before: the latest load wins, then the later file and line within one load.
        row_number() over (
            partition by {{ patient_record_key() }}
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
        {{ clean_text('patient_id') }} as patient_id,
        _snapshot_date as snapshot_date,
        {{ clean_free_text('given_name') }} as given_name,
        {{ clean_free_text('family_name') }} as family_name,
        {{ clean_text('birth_date') }} as birth_date_text,
        {{ standardize_sex('sex') }} as sex,
        {{ clean_free_text('address_line') }} as address_line,
        upper({{ clean_free_text('postal_code') }}) as postal_code,
        -- A blank insurer means self-pay.
        coalesce(upper({{ clean_text('insurer_id') }}), 'SELF_PAY') as insurer_id,
        upper({{ clean_text('plan') }}) as plan,
        {{ clean_text('updated_at') }} as updated_at_text,
        source_file_name,
        _source_line as source_line_number,
        ingested_at,
        load_id,
        jsonb_build_object(
            'patient_id', patient_id,
            'given_name', given_name,
            'family_name', family_name,
            'birth_date', birth_date,
            'sex', sex,
            'address_line', address_line,
            'postal_code', postal_code,
            'insurer_id', insurer_id,
            'plan', plan,
            'updated_at', updated_at
        ) as raw_record
    from ranked
    where version_rank = 1
),

typed as (
    select
        *,
        {{ safe_cast_date('birth_date_text') }} as birth_date,
        {{ safe_cast_timestamptz('updated_at_text', hospital_timezone) }} as updated_at
    from latest
),

validated as (
    select
        *,
        -- The first rule a record breaks is its reason; identity first.
        case
            when patient_id is null then 'MISSING_PATIENT_ID'
            -- Not a date, a date after the snapshot, or more than 120 years before it.
            when birth_date is null then 'INVALID_AGE'
            when birth_date > snapshot_date then 'INVALID_AGE'
            when birth_date < cast(snapshot_date - interval '120 years' as date) then 'INVALID_AGE'
        end as rejection_reason
    from typed
),

final as (
    select
        record_key,
        patient_id,
        snapshot_date,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        updated_at,
        rejection_reason,
        raw_record,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from validated
)

select * from final
