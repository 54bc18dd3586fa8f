{#-
    SCD Type 2 history of the patient master, built from the daily snapshots themselves, so
    validity follows the snapshot date, never the time dbt ran: loading one day or a year of
    snapshots at once gives the same history.

    Per patient, in snapshot-date order:
    - a staged row opens a new version when it is the patient's first, when a tracked column
      differs from the previous staged row, or when the patient was deleted in between;
    - the patient is deleted on the first snapshot date after a day they were listed on
      whose snapshot no longer lists them (neither staged nor quarantined): a new version
      with is_deleted, carrying the last known values;
    - a day whose row is quarantined lists the patient but tells nothing about them: no
      version, no deletion (the previous version carries on);
    - a day without a snapshot at all (a file skipped as identical) is no change.
    valid_from is the snapshot date that first showed the version (the master's state at the
    end of that day); valid_to is the next version's valid_from, 9999-12-31 for the current
    one. A version applies to events whose hospital-local date d has valid_from <= d <
    valid_to. Dates only: the session TimeZone cannot move a boundary.
-#}
{%- set tracked_columns = [
    'given_name',
    'family_name',
    'birth_date',
    'sex',
    'address_line',
    'postal_code',
    'insurer_id',
    'plan',
] -%}

with

staged as (
    select
        patient_id,
        snapshot_date,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        updated_at
    from {{ ref('stg_patients__patients') }}
),

rejected as (
    select
        patient_id,
        snapshot_date
    from {{ ref('patients_rejected') }}
    where patient_id is not null
),

-- The patient is listed in the day's snapshot, whether their row was staged or quarantined.
listings as (
    select
        patient_id,
        snapshot_date
    from staged
    union
    select
        patient_id,
        snapshot_date
    from rejected
),

snapshot_days as (
    select
        snapshot_date,
        lead(snapshot_date) over (order by snapshot_date) as next_snapshot_date
    from (select distinct listings.snapshot_date from listings) as listed_days
),

listing_gaps as (
    select
        listings.patient_id,
        snapshot_days.next_snapshot_date,
        lead(listings.snapshot_date) over (
            partition by listings.patient_id
            order by listings.snapshot_date
        ) as next_listed_date
    from listings
    inner join snapshot_days
        on listings.snapshot_date = snapshot_days.snapshot_date
),

-- The next snapshot after a listed day does not list the patient: deleted on that day.
deletions as (
    select
        patient_id,
        next_snapshot_date as snapshot_date
    from listing_gaps
    where
        next_snapshot_date is not null
        and (next_listed_date is null or next_listed_date > next_snapshot_date)
),

events as (
    select
        patient_id,
        snapshot_date,
        false as is_deleted,
        {% for column in tracked_columns -%}
            {{ column }},
        {% endfor -%}
        updated_at
    from staged
    union all
    select
        patient_id,
        snapshot_date,
        true as is_deleted,
        {% for column in tracked_columns -%}
            null as {{ column }},
        {% endfor -%}
        null as updated_at
    from deletions
),

compared as (
    select
        *,
        lag(is_deleted) over patient_events as previous_is_deleted,
        {% for column in tracked_columns -%}
            lag({{ column }}) over patient_events as previous_{{ column }},
        {% endfor -%}
        lag(updated_at) over patient_events as previous_updated_at
    from events
    window patient_events as (partition by patient_id order by snapshot_date)
),

versions as (
    select
        patient_id,
        snapshot_date as valid_from,
        is_deleted,
        -- A deletion keeps the values the patient had when the master dropped them.
        {% for column in tracked_columns -%}
            case when is_deleted then previous_{{ column }} else {{ column }} end as {{ column }},
        {% endfor -%}
        case when is_deleted then previous_updated_at else updated_at end as source_updated_at
    from compared
    where
        case
            -- Deleted only after a known version (not twice, not before any staged row).
            when is_deleted then previous_is_deleted = false
            when previous_is_deleted is null or previous_is_deleted then true
            else (
                {% for column in tracked_columns -%}
                    {{ column }} is distinct from previous_{{ column }}
                    {%- if not loop.last %} or {% endif %}
                {% endfor -%}
            )
        end
),

final as (
    select
        patient_id,
        valid_from,
        is_deleted,
        given_name,
        family_name,
        birth_date,
        sex,
        address_line,
        postal_code,
        insurer_id,
        plan,
        source_updated_at,
        cast(row_number() over patient_versions as integer) as version_number,
        coalesce(
            lead(valid_from) over patient_versions,
            date '9999-12-31'
        ) as valid_to,
        lead(valid_from) over patient_versions is null as is_current
    from versions
    window patient_versions as (partition by patient_id order by valid_from)
)

select * from final
