{#-
    The stable pseudonymous key of a patient in gold: the hex SHA-256 of the dbt var
    patient_key_salt (env CAREHOUSE_PATIENT_KEY_SALT), a separator and the hospital patient
    number. The same patient keeps the same key across runs as long as the salt is unchanged;
    without the salt the key cannot be recomputed from a guessed patient number. Changing the
    salt re-keys every patient (all gold tables are rebuilt in full, so they stay consistent).
-#}
{%- macro patient_key(patient_id_column) -%}
    encode(
        sha256(convert_to({{ sql_string_literal(var('patient_key_salt')) }} || '|' || {{ patient_id_column }}, 'UTF8')),
        'hex'
    )
{%- endmacro -%}
