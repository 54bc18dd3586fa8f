{#-
    Every distinct raw lab observation exactly once: the latest version of each Observation.id
    among committed loads, typed, checked against the loinc_tests seed, and given a rejection
    reason when it is not a usable laboratory result. stg_labs__observations keeps the rows
    without a reason; quarantine.labs_rejected keeps the others.

    Incremental, so a run reads the new loads, not the history: the committed rows ingested
    since the newest ingested_at here (less incremental_lookback_hours), typed and checked,
    plus the version already kept for each observation they touch, ranked together. The kept
    version is the latest of every version seen before, so the latest of it and the new ones
    is the latest of all: the row a full refresh keeps. Typing and checks depend on nothing
    but the row, the loinc_tests seed and hospital_timezone, so a kept row needs no second
    look; changing the seed's units or the hospital timezone needs a --full-refresh.

    The post-hook analyzes the table when this run built it in full, so the readers'
    watermark filter is planned as an index scan (macros/incremental/incremental.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[
            {'columns': ['record_key'], 'unique': True},
            {'columns': ['ingested_at']},
        ],
        post_hook=['{{ analyze_when_built_in_full() }}'],
    )
}}
{%- set hospital_timezone = var('hospital_timezone') -%}

with

committed_loads as (
    {{ committed_load_ids('raw_labs', 'labs') }}
),

source as (
    select
        observations.observation_id,
        observations.status,
        observations.category_code,
        observations.loinc_code,
        observations.patient_ref,
        observations.encounter_ref,
        observations.effective_at,
        observations.issued,
        observations.value_type,
        observations.value_numeric,
        observations.value_unit,
        observations.value_text,
        observations.reference_low,
        observations.reference_high,
        observations.interpretation_code,
        observations.resource,
        observations._source_file,
        observations._source_line,
        observations._ingested_at,
        observations._dlt_load_id,
        observations._dlt_id
    from {{ raw_relation('raw_labs', 'observations') }} as observations
    -- Rows of an interrupted load stay invisible until the loader has rolled them back.
    where
        observations._dlt_load_id in (select committed_loads.load_id from committed_loads)
    {% if is_incremental() -%}
        and observations._ingested_at >= {{ ingestion_watermark() }}
    {%- endif %}
),

loinc_tests as (
    select
        loinc_code,
        expected_unit
    from {{ ref('loinc_tests') }}
),

cleaned as (
    select
        {{ lab_record_key() }} as record_key,
        {{ clean_text('observation_id') }} as observation_id,
        lower({{ clean_text('status') }}) as status,
        lower({{ clean_text('category_code') }}) as category_code,
        {{ clean_text('loinc_code') }} as loinc_code,
        -- subject and encounter are FHIR references: Patient/<id>, Encounter/<admission id>.
        substring({{ clean_text('patient_ref') }} from '^Patient/(.+)$') as patient_id,
        substring({{ clean_text('encounter_ref') }} from '^Encounter/(.+)$') as admission_id,
        {{ clean_text('effective_at') }} as effective_at_text,
        {{ clean_text('issued') }} as issued_text,
        lower({{ clean_text('value_type') }}) as value_type,
        value_numeric,
        {{ clean_text('value_unit') }} as value_unit,
        value_text,
        reference_low,
        reference_high,
        upper({{ clean_text('interpretation_code') }}) as interpretation_code,
        resource,
        _source_file as source_file_name,
        _source_line as source_line_number,
        _ingested_at as ingested_at,
        _dlt_load_id as load_id
    from source
),

typed as (
    select
        cleaned.*,
        loinc_tests.expected_unit,
        loinc_tests.loinc_code is not null as is_known_code,
        {{ safe_cast_timestamptz('cleaned.effective_at_text', hospital_timezone) }} as effective_at,
        {{ safe_cast_timestamptz('cleaned.issued_text', hospital_timezone) }} as issued_at
    from cleaned
    left join loinc_tests
        on cleaned.loinc_code = loinc_tests.loinc_code
),

validated as (
    select
        *,
        -- The first rule a record breaks is its reason: what it is, then what it measured.
        case
            when coalesce(category_code, '') <> 'laboratory' then 'NOT_LABORATORY'
            -- Only reported results; registered, cancelled or entered-in-error are not.
            when coalesce(status, '') not in ('final', 'amended', 'corrected', 'preliminary')
                then 'NOT_RESULTED'
            when loinc_code is null then 'NO_LOINC_CODE'
            when not is_known_code then 'UNKNOWN_CODE'
            when coalesce(value_type, '') <> 'quantity' or value_numeric is null
                then 'NO_NUMERIC_VALUE'
            -- Units are compared exactly (UCUM codes are case-sensitive) and never converted.
            when coalesce(value_unit, '') <> expected_unit then 'UNIT_MISMATCH'
            when patient_id is null then 'MISSING_PATIENT'
            when effective_at is null then 'INVALID_DATE'
        end as rejection_reason
    from typed
),

-- Each version typed and checked on its own (the checks read nothing but the row and the
-- seed), so a version already kept needs no second look.
prepared as (
    select
        record_key,
        observation_id,
        status,
        category_code,
        loinc_code,
        patient_id,
        admission_id,
        effective_at,
        {{ local_date('effective_at', hospital_timezone) }} as effective_date,
        issued_at,
        value_type,
        value_numeric,
        value_unit,
        expected_unit,
        value_text,
        reference_low,
        reference_high,
        interpretation_code,
        rejection_reason,
        -- Kept for triage of rejected observations only: raw_labs holds every Observation as
        -- received, and a copy of each valid one would double the table the facts read.
        case when rejection_reason is not null then resource end as resource,  -- noqa: RF04
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from validated
    -- A fence: the rows are narrowed here, before the sort of the ranking, which would
    -- otherwise carry every raw Observation through it. No order: every row passes.
    offset 0  -- noqa: AM09
),

{% if is_incremental() -%}
already_kept as (
    select
        kept.record_key,
        kept.observation_id,
        kept.status,
        kept.category_code,
        kept.loinc_code,
        kept.patient_id,
        kept.admission_id,
        kept.effective_at,
        kept.effective_date,
        kept.issued_at,
        kept.value_type,
        kept.value_numeric,
        kept.value_unit,
        kept.expected_unit,
        kept.value_text,
        kept.reference_low,
        kept.reference_high,
        kept.interpretation_code,
        kept.rejection_reason,
        kept.resource,
        kept.source_file_name,
        kept.source_line_number,
        kept.ingested_at,
        kept.load_id
    from {{ this }} as kept
    where kept.record_key in (select prepared.record_key from prepared)
),

{% endif -%}
candidates as (
    select * from prepared
    {%- if is_incremental() %}
        union all
        select * from already_kept
    {%- endif %}
),

ranked as (
    select
        *,
        -- A re-issued result (amended, corrected) repeats its id: the latest load wins, then
        -- the later file and line within one load.
        row_number() over (
            partition by record_key
            order by
                ingested_at desc nulls last,
                source_file_name desc nulls last,
                source_line_number desc nulls last
        ) as version_rank
    from candidates
),

final as (
    select
        record_key,
        observation_id,
        status,
        category_code,
        loinc_code,
        patient_id,
        admission_id,
        effective_at,
        effective_date,
        issued_at,
        value_type,
        value_numeric,
        value_unit,
        expected_unit,
        value_text,
        reference_low,
        reference_high,
        interpretation_code,
        rejection_reason,
        resource,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from ranked
    where version_rank = 1
)

select * from final
