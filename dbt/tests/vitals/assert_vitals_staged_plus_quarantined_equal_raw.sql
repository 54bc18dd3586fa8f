-- Nothing is silently dropped: every distinct raw observation set (device_id, observed_at) is
-- either staged or quarantined, exactly once (duplicate messages count once). Returns a row
-- (a failure) when the counts disagree.
with

raw_records as (
    {%- set device = "coalesce(" ~ clean_text('vitals.device_id') ~ ", '')" %}
    select count(distinct {{ observation_set_id(device, 'vitals.observed_at') }}) as record_count
    from {{ raw_relation('raw_vitals', 'vitals') }} as vitals
),

staged as (
    select count(*) as record_count
    from {{ ref('stg_vitals__vitals') }}
),

quarantined as (
    select count(*) as record_count
    from {{ ref('vitals_rejected') }}
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
