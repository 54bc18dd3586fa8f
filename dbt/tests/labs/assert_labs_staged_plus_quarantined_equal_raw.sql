-- Nothing is silently dropped: every distinct raw lab observation (Observation.id) of a
-- committed load is either staged or quarantined, exactly once. Returns a row (a failure)
-- when the counts disagree.
with

committed_loads as (
    {{ committed_load_ids('raw_labs', 'labs') }}
),

raw_records as (
    select count(distinct {{ lab_record_key() }}) as record_count
    from {{ raw_relation('raw_labs', 'observations') }} as observations
    where observations._dlt_load_id in (select committed_loads.load_id from committed_loads)
),

staged as (
    select count(*) as record_count
    from {{ ref('stg_labs__observations') }}
),

quarantined as (
    select count(*) as record_count
    from {{ ref('labs_rejected') }}
),

final as (
    select
        raw_records.record_count as raw_count,
        staged.record_count as staged_count,
        quarantined.record_count as quarantined_count
    from raw_records
    cross join staged
    cross join quarantined
)

select
    raw_count,
    staged_count,
    quarantined_count
from final
where raw_count <> staged_count + quarantined_count
