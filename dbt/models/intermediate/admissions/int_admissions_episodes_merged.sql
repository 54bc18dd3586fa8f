{#-
    Every valid admission (stay) with the episode of care it belongs to. A patient's stays,
    in order of admission, are merged into one episode while each next stay starts on or
    before the latest discharge date of the episode so far (hospital-local calendar dates):
    overlapping stays, and back-to-back stays starting on the same day as the previous
    discharge (a transfer between wards) are one episode. A stay starting the next day or
    later opens a new episode. A stay still in hospital keeps its episode open: any later
    stay of the patient joins it.
-#}

with

admissions as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        discharge_disposition,
        primary_diagnosis_code,
        is_known_diagnosis_code,
        total_charges,
        insurer_id,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        is_discharged
    from {{ ref('stg_admissions__admissions') }}
),

admission_types as (
    select
        admission_type,
        is_planned
    from {{ ref('admission_types') }}
),

typed as (
    select
        admissions.*,
        -- Only a type the vocabulary marks as planned (elective) is planned; an unknown or
        -- missing type counts as unplanned, so it can never hide a readmission.
        coalesce(admission_types.is_planned, false) as is_planned
    from admissions
    left join admission_types
        on admissions.admission_type = admission_types.admission_type
),

ordered as (
    select
        *,
        -- The latest discharge date of the patient's earlier stays; an open stay never ends.
        max(coalesce(discharge_date, date 'infinity')) over (
            partition by patient_id
            order by admitted_at, admission_id
            rows between unbounded preceding and 1 preceding
        ) as previous_discharge_date
    from typed
),

numbered as (
    select
        *,
        -- Earlier episodes all end before a new one starts, so the running maximum over all
        -- earlier stays is the end of the current episode so far.
        sum(
            case
                when previous_discharge_date is null or admission_date > previous_discharge_date
                    then 1
                else 0
            end
        ) over (
            partition by patient_id
            order by admitted_at, admission_id
            rows between unbounded preceding and current row
        ) as episode_number
    from ordered
),

sequenced as (
    select
        *,
        first_value(admission_id) over (
            partition by patient_id, episode_number
            order by admitted_at, admission_id
        ) as episode_id,
        row_number() over (
            partition by patient_id, episode_number
            order by admitted_at, admission_id
        ) as episode_stay_number,
        -- The stay that ends the episode: the latest discharge (an open stay is last), then
        -- the later admission.
        row_number() over (
            partition by patient_id, episode_number
            order by discharged_at desc nulls first, admitted_at desc, admission_id desc
        ) as reverse_discharge_rank
    from numbered
),

episodes as (
    select
        episode_id,
        count(*) as episode_stay_count,
        min(admitted_at) as episode_admitted_at,
        min(admission_date) as episode_admission_date,
        bool_and(is_discharged) as is_episode_discharged,
        -- Null while any stay of the episode is open.
        case when bool_and(is_discharged) then max(discharged_at) end as episode_discharged_at,
        case when bool_and(is_discharged) then max(discharge_date) end as episode_discharge_date,
        -- How the episode began (its first stay) decides whether it was planned.
        bool_or(is_planned and episode_stay_number = 1) as is_episode_planned,
        max(
            case when reverse_discharge_rank = 1 then discharge_disposition end
        ) as episode_discharge_disposition
    from sequenced
    group by episode_id
),

final as (
    select
        sequenced.admission_id,
        sequenced.patient_id,
        sequenced.department,
        sequenced.admission_type,
        sequenced.is_planned,
        sequenced.discharge_disposition,
        sequenced.primary_diagnosis_code,
        sequenced.is_known_diagnosis_code,
        sequenced.total_charges,
        sequenced.insurer_id,
        sequenced.admitted_at,
        sequenced.discharged_at,
        sequenced.admission_date,
        sequenced.discharge_date,
        sequenced.is_discharged,
        sequenced.episode_id,
        episodes.episode_admitted_at,
        episodes.episode_discharged_at,
        episodes.episode_admission_date,
        episodes.episode_discharge_date,
        episodes.is_episode_discharged,
        episodes.is_episode_planned,
        episodes.episode_discharge_disposition,
        cast(sequenced.episode_stay_number as integer) as episode_stay_number,
        cast(episodes.episode_stay_count as integer) as episode_stay_count,
        sequenced.reverse_discharge_rank = 1 as is_episode_last_stay
    from sequenced
    inner join episodes
        on sequenced.episode_id = episodes.episode_id
)

select * from final
