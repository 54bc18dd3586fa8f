-- Staging matches aliases after normalising them (trim, upper case, spaces and hyphens as
-- underscores): two aliases that normalise alike would match one raw name twice. Returns
-- every such normalised alias.
with

aliases as (
    select {{ normalize_department_name('alias') }} as normalised_alias
    from {{ ref('department_aliases') }}
),

final as (
    select
        normalised_alias,
        count(*) as occurrences
    from aliases
    group by normalised_alias
    having count(*) > 1
)

select
    normalised_alias,
    occurrences
from final
