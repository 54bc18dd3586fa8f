{#-
    Every distinct vital-signs observation set exactly once: raw messages de-duplicated by
    (device_id, observed_at), keeping the lowest Kafka offset (a producer retry repeats a
    message at a later offset), and given a rejection reason when a value is physiologically
    implausible. stg_vitals__vitals keeps the rows without a reason; quarantine.vitals_rejected
    keeps the others. Every raw vitals row is committed (the drain writes rows and offsets in
    one transaction), so there is no ledger filter.

    Incremental, so a run reads the new messages, not the history: the messages ingested since
    the newest ingested_at here (less vitals_lookback_seconds), plus the copy already kept
    for each set those messages touch, ranked together. The kept copy is the lowest of every
    copy seen before, so the lowest of it and the new ones is the lowest of all: the same row
    a full refresh keeps. Only sets whose kept copy changes are written (a tie, the kept
    copy read again inside the lookback, goes to the kept one), so a stream refresh writes
    what arrived, not its whole lookback. A set whose kept copy changes gets that copy's
    ingested_at, which is how fct_vitals and the quarantine notice the change.

    Two writers build this table: the vitals stream (after each micro-batch) and the nightly
    (a step of its own); both hold the gold lock meanwhile (flows.tasks.VITALS_CHAIN), so
    they take turns. The post-hook analyzes the table when this run built it in full, so the
    readers' watermark filter is planned as an index scan (macros/incremental/incremental.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key='observation_set_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[
            {'columns': ['observation_set_id'], 'unique': True},
            {'columns': ['ingested_at']},
        ],
        post_hook=['{{ analyze_when_built_in_full() }}'],
        tags=['vitals_stream'],
    )
}}

with

source as (
    select
        vitals.kafka_topic,
        vitals.kafka_partition,
        vitals.kafka_offset,
        vitals.payload,
        vitals.device_id,
        vitals.patient_id,
        vitals.observed_at,
        vitals.heart_rate,
        vitals.resp_rate,
        vitals.systolic_bp,
        vitals.diastolic_bp,
        vitals.spo2,
        vitals.spo2_scale,
        vitals.on_oxygen,
        vitals.consciousness,
        vitals.temperature_c,
        vitals._ingested_at,
        vitals._drain_batch_id
    from {{ raw_relation('raw_vitals', 'vitals') }} as vitals
    {% if is_incremental() -%}
        where vitals._ingested_at >= {{ ingestion_watermark(lookback=vitals_lookback()) }}
    {%- endif %}
),

cleaned as (
    select
        {{ vitals_record_key() }} as observation_set_id,
        {{ clean_text('device_id') }} as device_id,
        {{ clean_text('patient_id') }} as patient_id,
        observed_at,
        heart_rate,
        resp_rate,
        systolic_bp,
        diastolic_bp,
        spo2,
        spo2_scale,
        on_oxygen as is_on_oxygen,
        upper({{ clean_text('consciousness') }}) as consciousness,
        temperature_c,
        payload,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        _ingested_at as ingested_at,
        _drain_batch_id as drain_batch_id
    from source
),

checked as (
    select
        *,
        -- Each parameter outside what a living patient (or a working sensor) can show.
        array_remove(
            array[
                case when heart_rate not between 20 and 300 then 'heart_rate' end,
                case when resp_rate not between 2 and 80 then 'resp_rate' end,
                case when systolic_bp not between 40 and 300 then 'systolic_bp' end,
                case when diastolic_bp not between 10 and 200 then 'diastolic_bp' end,
                case when spo2 not between 50 and 100 then 'spo2' end,
                case when temperature_c not between 25 and 45 then 'temperature_c' end,
                case when spo2_scale is null or spo2_scale not in (1, 2) then 'spo2_scale' end,
                case
                    when consciousness is null or consciousness not in ('A', 'C', 'V', 'P', 'U')
                        then 'consciousness'
                end
            ],
            null
        ) as implausible_parameters
    from cleaned
),

validated as (
    select
        *,
        case
            when device_id is null then 'MISSING_DEVICE_ID'
            when patient_id is null then 'MISSING_PATIENT_ID'
            when cardinality(implausible_parameters) > 0 then 'IMPLAUSIBLE_VITAL'
        end as rejection_reason
    from checked
),

-- Each message checked on its own (the checks read nothing but the message), so a copy
-- already kept needs no second look.
prepared as (
    select
        observation_set_id,
        device_id,
        patient_id,
        observed_at,
        heart_rate,
        resp_rate,
        systolic_bp,
        diastolic_bp,
        spo2,
        spo2_scale,
        is_on_oxygen,
        consciousness,
        temperature_c,
        rejection_reason,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id,
        array_to_string(implausible_parameters, ',') as implausible_parameters,
        -- Kept for triage of rejected sets only: raw_vitals holds every message as received,
        -- and a copy of each valid one would double the table the facts read.
        case when rejection_reason is not null then payload end as payload
    from validated
    -- A fence: the rows are narrowed here, before the sort of the ranking, which would
    -- otherwise carry every raw payload through it. No order: every row passes.
    offset 0  -- noqa: AM09
),

{% if is_incremental() -%}
already_kept as (
    select
        kept.observation_set_id,
        kept.device_id,
        kept.patient_id,
        kept.observed_at,
        kept.heart_rate,
        kept.resp_rate,
        kept.systolic_bp,
        kept.diastolic_bp,
        kept.spo2,
        kept.spo2_scale,
        kept.is_on_oxygen,
        kept.consciousness,
        kept.temperature_c,
        kept.rejection_reason,
        kept.kafka_topic,
        kept.kafka_partition,
        kept.kafka_offset,
        kept.ingested_at,
        kept.drain_batch_id,
        kept.implausible_parameters,
        kept.payload
    from {{ this }} as kept
    where kept.observation_set_id in (select prepared.observation_set_id from prepared)
),

{% endif -%}
candidates as (
    select
        prepared.*,
        true as is_new
    from prepared
    {%- if is_incremental() %}
        union all
        select
            already_kept.*,
            false as is_new
        from already_kept
    {%- endif %}
),

ranked as (
    select
        *,
        -- A device's messages share one partition (the key is the device), so its lowest
        -- offset is the first copy sent; topic and partition only make the order total.
        row_number() over (
            partition by device_id, observed_at
            order by kafka_offset, kafka_partition, kafka_topic, is_new
        ) as copy_rank
    from candidates
),

final as (
    select
        observation_set_id,
        device_id,
        patient_id,
        observed_at,
        heart_rate,
        resp_rate,
        systolic_bp,
        diastolic_bp,
        spo2,
        spo2_scale,
        is_on_oxygen,
        consciousness,
        temperature_c,
        rejection_reason,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id,
        implausible_parameters,
        payload
    from ranked
    -- The kept copy still first: the set is unchanged, and not written again.
    where copy_rank = 1 and is_new
)

select * from final
