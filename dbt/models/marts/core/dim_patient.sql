{#-
    Patients in gold: the SCD2 history of int_patients_history without direct identifiers.
    Names, address line, birth date and the patient number never leave silver; the patient is
    the pseudonymous patient_key, age is a ten-year band (90+ above 89) taken at the start of
    each version, and the postal code is cut to its first three characters.
-#}

with

history as (
    select
        patient_id,
        valid_from,
        valid_to,
        version_number,
        is_current,
        is_deleted,
        birth_date,
        sex,
        postal_code,
        insurer_id,
        plan
    from {{ ref('int_patients_history') }}
),

final as (
    select
        cast({{ patient_key('patient_id') }} || '@' || to_char(valid_from, 'YYYY-MM-DD') as text)
            as patient_version_id,
        cast({{ patient_key('patient_id') }} as text) as patient_key,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(version_number as integer) as version_number,
        cast(is_current as boolean) as is_current,
        cast(is_deleted as boolean) as is_deleted,
        cast(sex as text) as sex,
        cast({{ age_band(age_in_years('birth_date', 'valid_from')) }} as text) as age_band,
        cast(insurer_id as text) as insurer_id,
        cast(plan as text) as plan,
        cast({{ postal_area('postal_code') }} as text) as postal_area
    from history
)

select
    patient_version_id,
    patient_key,
    valid_from,
    valid_to,
    version_number,
    is_current,
    is_deleted,
    sex,
    age_band,
    insurer_id,
    plan,
    postal_area
from final
