with

rejected as (
    select
        record_key,
        patient_id,
        snapshot_date,
        rejection_reason,
        raw_record,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from {{ ref('base_patients__patients') }}
    where rejection_reason is not null
),

final as (
    select
        record_key,
        patient_id,
        snapshot_date,
        rejection_reason as reason,
        raw_record,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from rejected
)

select * from final
