-- Nothing is silently dropped: every distinct raw patient-master record (patient per snapshot
-- date) of a committed load is either staged or quarantined, exactly once. Returns a row (a
-- failure) when the counts disagree.
with

committed_loads as (
    {{ committed_load_ids('raw_patients', 'patients') }}
),

raw_records as (
    select count(distinct {{ patient_record_key() }}) as record_count
    from {{ raw_relation('raw_patients', 'patients') }} as patients
    where patients._dlt_load_id in (select committed_loads.load_id from committed_loads)
),

staged as (
    select count(*) as record_count
    from {{ ref('stg_patients__patients') }}
),

quarantined as (
    select count(*) as record_count
    from {{ ref('patients_rejected') }}
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
