{#-
    The audit trail of the patient master as the warehouse saw it, run by run: a dbt
    snapshot (SCD2, check strategy on the tracked columns) of each patient's current state
    in int_patients_history. Its dbt_valid_from/dbt_valid_to are the times of the dbt runs
    that noticed a change (UTC, macros/overrides/snapshot_time.sql), not the snapshot dates:
    when many days are loaded at once it records only the state they end in. The business
    history, with validity by snapshot date, is int_patients_history (and gold.dim_patient);
    this records when the warehouse learned it. A patient the master no longer lists gets a
    new record with dbt_is_deleted = 'True' (hard_deletes: new_record).
-#}
{% snapshot patients_snapshot %}

    {{
        config(
            unique_key='patient_id',
            strategy='check',
            check_cols=[
                'given_name',
                'family_name',
                'birth_date',
                'sex',
                'address_line',
                'postal_code',
                'insurer_id',
                'plan',
            ],
            dbt_valid_to_current="'9999-12-31'::timestamp",
            hard_deletes='new_record',
        )
    }}

    select
        patient_id,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        valid_from as history_valid_from
    from {{ ref('int_patients_history') }}
    where is_current and not is_deleted

{% endsnapshot %}
