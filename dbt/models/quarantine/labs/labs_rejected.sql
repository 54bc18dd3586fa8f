with

rejected as (
    select
        record_key,
        observation_id,
        rejection_reason,
        status,
        category_code,
        loinc_code,
        value_type,
        value_unit,
        expected_unit,
        resource,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from {{ ref('base_labs__observations') }}
    where rejection_reason is not null
),

final as (
    select
        record_key,
        observation_id,
        rejection_reason as reason,
        status,
        category_code,
        loinc_code,
        value_type,
        value_unit,
        expected_unit,
        resource,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from rejected
)

select * from final
