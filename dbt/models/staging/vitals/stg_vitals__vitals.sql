with

vitals as (
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
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id
    from {{ ref('base_vitals__vitals') }}
    where rejection_reason is null
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
        cast(spo2_scale as integer) as spo2_scale,
        is_on_oxygen,
        consciousness,
        temperature_c,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id
    from vitals
)

select * from final
