{%- set window_days = var('readmission_window_days') -%}

with

admissions as (
    select
        admission_id,
        patient_id,
        department,
        admission_type,
        is_planned,
        discharge_disposition,
        primary_diagnosis_code,
        is_known_diagnosis_code,
        total_charges,
        insurer_id,
        admitted_at,
        discharged_at,
        admission_date,
        discharge_date,
        is_discharged,
        episode_id,
        is_episode_last_stay,
        episode_admission_date,
        episode_discharge_date,
        is_episode_discharged,
        is_episode_planned,
        episode_discharge_disposition
    from {{ ref('int_admissions_episodes_merged') }}
),

episodes as (
    select
        episode_id,
        patient_id,
        episode_admission_date,
        episode_discharge_date,
        is_episode_planned,
        -- Index: the episode ended in a discharge alive, not handed over to another acute
        -- hospital. Internal ward transfers were merged into the episode, so only the
        -- disposition of the stay that ends it counts.
        (
            is_episode_discharged
            and coalesce(episode_discharge_disposition, '') not in ('died', 'transfer')
        ) as is_index_episode
    from admissions
    where is_episode_last_stay
),

readmission_candidates as (
    select
        index_episode.episode_id,
        later_episode.episode_id as readmission_episode_id,
        later_episode.episode_admission_date
        - index_episode.episode_discharge_date as days_to_readmission,
        row_number() over (
            partition by index_episode.episode_id
            order by later_episode.episode_admission_date, later_episode.episode_id
        ) as candidate_rank
    from episodes as index_episode
    inner join episodes as later_episode
        on
            index_episode.patient_id = later_episode.patient_id
            -- A later episode starts after the index discharge date (an earlier start would
            -- have been merged into the index episode), within the window counted in calendar
            -- days from the discharge date: day {{ window_days }} counts, the day after does not.
            and index_episode.episode_discharge_date < later_episode.episode_admission_date
            and index_episode.episode_discharge_date + {{ window_days }}
            >= later_episode.episode_admission_date
            -- Planned (elective) episodes are not readmissions.
            and not later_episode.is_episode_planned
    where index_episode.is_index_episode
),

readmissions as (
    select
        episode_id,
        readmission_episode_id,
        days_to_readmission
    from readmission_candidates
    where candidate_rank = 1
),

final as (
    select
        admissions.admission_id,
        admissions.patient_id,
        admissions.department,
        admissions.admission_type,
        admissions.is_planned,
        admissions.discharge_disposition,
        admissions.primary_diagnosis_code,
        admissions.is_known_diagnosis_code,
        admissions.total_charges,
        admissions.insurer_id,
        admissions.admitted_at,
        admissions.discharged_at,
        admissions.admission_date,
        admissions.discharge_date,
        admissions.is_discharged,
        admissions.episode_id,
        readmissions.readmission_episode_id,
        readmissions.days_to_readmission,
        -- Same-day stay = 0 days: LOS counts calendar dates in the hospital timezone.
        admissions.discharge_date - admissions.admission_date as length_of_stay_days,
        -- An index episode is counted once, on the stay that ends it (its discharge).
        coalesce(
            admissions.is_episode_last_stay and episodes.is_index_episode, false
        ) as is_index_admission,
        readmissions.episode_id is not null as is_readmitted
    from admissions
    left join episodes
        on
            admissions.episode_id = episodes.episode_id
            and admissions.is_episode_last_stay
    left join readmissions
        on
            admissions.episode_id = readmissions.episode_id
            and admissions.is_episode_last_stay
)

select * from final
