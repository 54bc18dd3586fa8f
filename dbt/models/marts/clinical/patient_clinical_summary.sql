{#-
    One row per patient known to any source. Demographics are the current version of the
    patient history (no identifiers: sex, age band, payer, plan, postal area); the age band
    is the age on as_of_date. as_of_date is the latest data date (the latest admission,
    discharge, lab effective, vitals or patient-master date), not today, so the same data
    always gives the same summary; "the last 90 days" are the recent_labs_window_days (90)
    days ending on it.
-#}
{%- set window_days = var('recent_labs_window_days') -%}

with

patient_versions as (
    select
        patient_id,
        valid_from,
        is_current,
        is_deleted,
        birth_date,
        sex,
        postal_code,
        insurer_id,
        plan
    from {{ ref('int_patients_history') }}
),

admissions as (
    select
        patient_key,
        admission_date,
        discharge_date,
        los_days,
        is_readmitted_30d
    from {{ ref('fct_admissions') }}
),

lab_results as (
    select
        patient_key,
        effective_date,
        is_abnormal
    from {{ ref('fct_lab_results') }}
),

vitals as (
    select
        patient_key,
        observation_set_id,
        observed_at,
        observed_date,
        news2_score,
        news2_band
    from {{ ref('fct_vitals') }}
),

data_date as (
    select
        greatest(
            (select max(admissions.admission_date) from admissions),
            (select max(admissions.discharge_date) from admissions),
            (select max(lab_results.effective_date) from lab_results),
            (select max(vitals.observed_date) from vitals),
            (select max(patient_versions.valid_from) from patient_versions)
        ) as as_of_date
),

current_patients as (
    select
        {{ patient_key('patient_id') }} as patient_key,
        birth_date,
        sex,
        postal_code,
        insurer_id,
        plan,
        not is_deleted as is_listed_in_master
    from patient_versions
    where is_current
),

admission_totals as (
    select
        patient_key,
        count(*) as admissions,
        max(admission_date) as last_admission_date,
        max(discharge_date) as last_discharge_date,
        sum(los_days) as total_los_days,
        count(*) filter (where is_readmitted_30d) as readmissions_30d
    from admissions
    group by patient_key
),

recent_labs as (
    select
        lab_results.patient_key,
        count(*) as lab_results_90d,
        count(*) filter (where lab_results.is_abnormal) as abnormal_lab_results_90d
    from lab_results
    cross join data_date
    where
        lab_results.effective_date > data_date.as_of_date - {{ window_days }}
        and lab_results.effective_date <= data_date.as_of_date
    group by lab_results.patient_key
),

latest_vitals as (
    select
        patient_key,
        observed_at,
        news2_score,
        news2_band,
        row_number() over (
            partition by patient_key
            order by observed_at desc, observation_set_id desc
        ) as recency_rank
    from vitals
),

patients as (
    select current_patients.patient_key from current_patients
    union
    select admissions.patient_key from admissions
    union
    select lab_results.patient_key from lab_results
    union
    select vitals.patient_key from vitals
),

final as (
    select
        cast(patients.patient_key as text) as patient_key,
        cast(current_patients.sex as text) as sex,
        cast(
            {{ age_band(age_in_years('current_patients.birth_date', 'data_date.as_of_date')) }}
            as text
        ) as age_band,
        cast(current_patients.insurer_id as text) as insurer_id,
        cast(current_patients.plan as text) as plan,
        cast({{ postal_area('current_patients.postal_code') }} as text) as postal_area,
        cast(coalesce(current_patients.is_listed_in_master, false) as boolean)
            as is_listed_in_master,
        cast(coalesce(admission_totals.admissions, 0) as bigint) as admissions,
        cast(admission_totals.last_admission_date as date) as last_admission_date,
        cast(admission_totals.last_discharge_date as date) as last_discharge_date,
        cast(coalesce(admission_totals.total_los_days, 0) as bigint) as total_los_days,
        cast(coalesce(admission_totals.readmissions_30d, 0) as bigint) as readmissions_30d,
        cast(coalesce(recent_labs.lab_results_90d, 0) as bigint) as lab_results_90d,
        cast(coalesce(recent_labs.abnormal_lab_results_90d, 0) as bigint)
            as abnormal_lab_results_90d,
        cast(latest_vitals.observed_at as timestamptz) as latest_vitals_observed_at,
        cast(latest_vitals.news2_score as integer) as latest_news2_score,
        cast(latest_vitals.news2_band as text) as latest_news2_band,
        cast(data_date.as_of_date as date) as as_of_date
    from patients
    cross join data_date
    left join current_patients
        on patients.patient_key = current_patients.patient_key
    left join admission_totals
        on patients.patient_key = admission_totals.patient_key
    left join recent_labs
        on patients.patient_key = recent_labs.patient_key
    left join latest_vitals
        on
            patients.patient_key = latest_vitals.patient_key
            and latest_vitals.recency_rank = 1
)

select
    patient_key,
    sex,
    age_band,
    insurer_id,
    plan,
    postal_area,
    is_listed_in_master,
    admissions,
    last_admission_date,
    last_discharge_date,
    total_los_days,
    readmissions_30d,
    lab_results_90d,
    abnormal_lab_results_90d,
    latest_vitals_observed_at,
    latest_news2_score,
    latest_news2_band,
    as_of_date
from final
