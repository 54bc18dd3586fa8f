with

rejected as (
    select
        observation_set_id,
        device_id,
        observed_at,
        rejection_reason,
        implausible_parameters,
        payload,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id
    from {{ ref('base_vitals__vitals') }}
    where rejection_reason is not null
),

final as (
    select
        observation_set_id,
        device_id,
        observed_at,
        rejection_reason as reason,
        implausible_parameters,
        payload,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        drain_batch_id
    from rejected
)

select * from final
