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
