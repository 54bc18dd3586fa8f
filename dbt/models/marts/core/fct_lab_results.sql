{#-
    Lab results fact, incremental. Each run takes the results that staging's incremental
    table (base_labs__observations) changed since the newest ingested_at already here, less
    incremental_lookback_hours (a load that started earlier but committed later is not
    missed), flags them (the flagging model is a view, so only those results are flagged)
    and replaces rows by observation_id (delete+insert), so a re-issued result (amended,
    corrected) replaces its earlier version. The pre-hook first removes results whose latest
    version is now quarantined (e.g. an amendment in the wrong unit), as a full rebuild would
    not have them. Changing loinc_tests reference ranges needs a --full-refresh of this model.
-#}
{{
    config(
        materialized='incremental',
        unique_key='observation_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['ingested_at']}],
        pre_hook=[
            "{{ delete_facts_now_quarantined('observation_id', ref('labs_rejected')) }}",
        ],
    )
}}
-- depends_on: {{ ref('labs_rejected') }}

with

results as (
    select
        observation_id,
        patient_id,
        admission_id,
        loinc_code,
        status,
        effective_at,
        effective_date,
        value_numeric,
        value_unit,
        reference_low,
        reference_high,
        reference_range_source,
        interpretation_code,
        is_outside_reference_range,
        is_flagged_by_lab,
        is_abnormal,
        ingested_at
    from {{ ref('int_lab_results_flagged') }}
    {% if is_incremental() -%}
        where ingested_at >= {{ ingestion_watermark() }}
    {%- endif %}
),

final as (
    select
        cast(observation_id as text) as observation_id,
        -- Pseudonymous: gold never carries the hospital patient number.
        cast({{ patient_key('patient_id') }} as text) as patient_key,
        cast(admission_id as text) as admission_id,
        cast(loinc_code as text) as loinc_code,
        cast(status as text) as status,
        cast(effective_at as timestamptz) as effective_at,
        cast(effective_date as date) as effective_date,
        -- Exact as sent, without the raw column's trailing zeros.
        cast(trim_scale(value_numeric) as numeric) as value,  -- noqa: RF04
        cast(value_unit as text) as unit,
        cast(trim_scale(reference_low) as numeric) as reference_low,
        cast(trim_scale(reference_high) as numeric) as reference_high,
        cast(reference_range_source as text) as reference_range_source,
        cast(interpretation_code as text) as interpretation_code,
        cast(is_outside_reference_range as boolean) as is_outside_reference_range,
        cast(is_flagged_by_lab as boolean) as is_flagged_by_lab,
        cast(is_abnormal as boolean) as is_abnormal,
        cast(ingested_at as timestamptz) as ingested_at
    from results
)

select
    observation_id,
    patient_key,
    admission_id,
    loinc_code,
    status,
    effective_at,
    effective_date,
    value,  -- noqa: RF04
    unit,
    reference_low,
    reference_high,
    reference_range_source,
    interpretation_code,
    is_outside_reference_range,
    is_flagged_by_lab,
    is_abnormal,
    ingested_at
from final
