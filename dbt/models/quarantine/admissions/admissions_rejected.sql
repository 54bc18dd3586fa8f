with

rejected as (
    select
        record_key,
        admission_id,
        rejection_reason,
        raw_record,
        source_file_name,
        source_line_number,
        source_file_hash,
        ingested_at,
        load_id
    from {{ ref('base_admissions__admissions') }}
    where rejection_reason is not null
),

final as (
    select
        record_key,
        admission_id,
        rejection_reason as reason,
        raw_record,
        source_file_name,
        source_line_number,
        source_file_hash,
        ingested_at,
        load_id
    from rejected
)

select * from final
