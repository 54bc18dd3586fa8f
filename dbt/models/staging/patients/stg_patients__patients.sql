{#-
    A table, not a view: base_patients__patients (ephemeral) de-duplicates and types every raw
    patients row, which a view would do again for each of its readers and data tests (at a
    million rows, most of the nightly's silver build); a table does it once per build.
-#}
{{ config(materialized='table') }}

with

patients as (
    select
        patient_id,
        snapshot_date,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        updated_at,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from {{ ref('base_patients__patients') }}
    where rejection_reason is null
),

final as (
    select
        patient_id,
        snapshot_date,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        updated_at,
        source_file_name,
        source_line_number,
        ingested_at,
        load_id
    from patients
)

select * from final
