{#-
    Vital signs fact with NEWS2, incremental. Each run takes the observation sets that
    staging's incremental table (base_vitals__vitals) changed since the newest ingested_at
    already here, less vitals_lookback_seconds (drain transactions can commit out of
    order), leaves out those already here as of the same copy (same ingested_at: a set's
    copies committed together were ranked together), scores the rest (the scoring models are
    views, so only those sets are scored) and replaces rows by observation_set_id
    (delete+insert): a stream refresh writes what changed, not its whole lookback. Late
    messages (observed hours ago, ingested now) are taken because the watermark is ingestion
    time, not observation time.
    The pre-hook first removes sets whose kept copy is now quarantined, as a full rebuild would
    not have them. Tagged vitals_stream: `dbt run --select tag:vitals_stream` refreshes it (and
    the staging table it reads) per micro-batch; news2_alerts is a view over it.
-#}
{{
    config(
        materialized='incremental',
        unique_key='observation_set_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['ingested_at']}],
        tags=['vitals_stream'],
        pre_hook=[
            "{{ delete_facts_now_quarantined("
            "'observation_set_id', ref('vitals_rejected'), vitals_lookback()) }}",
        ],
    )
}}
-- depends_on: {{ ref('vitals_rejected') }}
{%- set hospital_timezone = var('hospital_timezone') %}

with

scored as (
    select
        news2.observation_set_id,
        news2.device_id,
        news2.patient_id,
        news2.observed_at,
        news2.heart_rate,
        news2.resp_rate,
        news2.systolic_bp,
        news2.diastolic_bp,
        news2.spo2,
        news2.spo2_scale,
        news2.is_on_oxygen,
        news2.consciousness,
        news2.temperature_c,
        news2.respiration_score,
        news2.spo2_score,
        news2.oxygen_score,
        news2.systolic_score,
        news2.pulse_score,
        news2.consciousness_score,
        news2.temperature_score,
        news2.news2_score,
        news2.max_parameter_score,
        news2.news2_band,
        news2.is_alert,
        news2.ingested_at
    from {{ ref('int_vitals_news2_scored') }} as news2
    {% if is_incremental() -%}
        where
            news2.ingested_at >= {{ ingestion_watermark(lookback=vitals_lookback()) }}
            and not exists (
                select
                from {{ this }} as built
                where
                    built.observation_set_id = news2.observation_set_id
                    and built.ingested_at = news2.ingested_at
            )
    {%- endif %}
),

final as (
    select
        cast(observation_set_id as text) as observation_set_id,
        cast(device_id as text) as device_id,
        -- Pseudonymous: gold never carries the hospital patient number.
        cast({{ patient_key('patient_id') }} as text) as patient_key,
        cast(observed_at as timestamptz) as observed_at,
        cast({{ local_date('observed_at', hospital_timezone) }} as date) as observed_date,
        cast(heart_rate as numeric) as heart_rate,
        cast(resp_rate as numeric) as resp_rate,
        cast(systolic_bp as numeric) as systolic_bp,
        cast(diastolic_bp as numeric) as diastolic_bp,
        cast(spo2 as numeric) as spo2,
        cast(spo2_scale as integer) as spo2_scale,
        cast(is_on_oxygen as boolean) as is_on_oxygen,
        cast(consciousness as text) as consciousness,
        cast(temperature_c as numeric) as temperature_c,
        cast(respiration_score as integer) as respiration_score,
        cast(spo2_score as integer) as spo2_score,
        cast(oxygen_score as integer) as oxygen_score,
        cast(systolic_score as integer) as systolic_score,
        cast(pulse_score as integer) as pulse_score,
        cast(consciousness_score as integer) as consciousness_score,
        cast(temperature_score as integer) as temperature_score,
        cast(news2_score as integer) as news2_score,
        cast(max_parameter_score as integer) as max_parameter_score,
        cast(news2_band as text) as news2_band,
        cast(is_alert as boolean) as is_alert,
        cast(ingested_at as timestamptz) as ingested_at
    from scored
)

select
    observation_set_id,
    device_id,
    patient_key,
    observed_at,
    observed_date,
    heart_rate,
    resp_rate,
    systolic_bp,
    diastolic_bp,
    spo2,
    spo2_scale,
    is_on_oxygen,
    consciousness,
    temperature_c,
    respiration_score,
    spo2_score,
    oxygen_score,
    systolic_score,
    pulse_score,
    consciousness_score,
    temperature_score,
    news2_score,
    max_parameter_score,
    news2_band,
    is_alert,
    ingested_at
from final
