with

admissions as (
    select
        discharge_date,
        insurer_id_at_admission,
        total_charges
    from {{ ref('fct_admissions') }}
    where is_discharged
),

quarterly as (
    select
        cast(date_trunc('quarter', cast(discharge_date as timestamp)) as date) as discharge_quarter,
        -- Attributed to the payer the patient had when admitted; blank was made SELF_PAY.
        coalesce(insurer_id_at_admission, 'SELF_PAY') as insurer_id,
        count(*) as discharged_admissions,
        count(total_charges) as charged_admissions,
        coalesce(sum(total_charges), 0) as total_charges
    from admissions
    group by
        cast(date_trunc('quarter', cast(discharge_date as timestamp)) as date),
        coalesce(insurer_id_at_admission, 'SELF_PAY')
),

final as (
    select
        cast(discharge_quarter as date) as discharge_quarter,
        cast(
            to_char(cast(discharge_quarter as timestamp), 'YYYY-"Q"Q') as text
        ) as quarter_label,
        cast(insurer_id as text) as insurer_id,
        cast(discharged_admissions as bigint) as discharged_admissions,
        cast(charged_admissions as bigint) as charged_admissions,
        cast(total_charges as numeric(16, 2)) as total_charges
    from quarterly
)

select
    discharge_quarter,
    quarter_label,
    insurer_id,
    discharged_admissions,
    charged_admissions,
    total_charges
from final
