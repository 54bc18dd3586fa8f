with

departments as (
    select
        code,
        name,
        bed_capacity
    from {{ ref('departments') }}
),

final as (
    select
        cast(code as text) as department,
        cast(name as text) as department_name,
        cast(bed_capacity as integer) as bed_capacity
    from departments
)

select
    department,
    department_name,
    bed_capacity
from final
