with

loinc_tests as (
    select
        loinc_code,
        display,
        expected_unit,
        reference_low,
        reference_high
    from {{ ref('loinc_tests') }}
),

final as (
    select
        cast(loinc_code as text) as loinc_code,
        cast(display as text) as test_name,
        cast(expected_unit as text) as expected_unit,
        cast(reference_low as numeric(12, 4)) as reference_low,
        cast(reference_high as numeric(12, 4)) as reference_high
    from loinc_tests
)

select
    loinc_code,
    test_name,
    expected_unit,
    reference_low,
    reference_high
from final
