{#-
    One row per pipeline run, as the orchestrator recorded it in audit.pipeline_runs,
    incremental: each build takes the runs recorded (inserted or updated) since the newest
    recorded_at already here, less incremental_lookback_hours, and replaces them by run_id,
    so a run recorded as running and later as finished ends as one row with its final state.
    A change of its columns fails the build, as for every gold model; every row comes from
    audit.pipeline_runs, so `dbt run --full-refresh --select pipeline_run_audit` rebuilds it
    without losing a run.
-#}
{{
    config(
        materialized='incremental',
        unique_key='run_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
{%- set sources = ['admissions', 'patients', 'labs', 'vitals'] -%}
{%- set counts = ['received', 'loaded', 'quarantined'] -%}

with

runs as (
    select
        run_id,
        business_date,
        started_at,
        finished_at,
        duration_seconds,
        status,
        failed_step,
        {% for source_name in sources -%}
            {% for count in counts -%}
                {{ source_name }}_rows_{{ count }},
            {% endfor -%}
        {% endfor -%}
        raw_gate_outcome,
        staging_gate_outcome,
        silver_gate_outcome,
        gold_gate_outcome,
        gate_outcomes,
        step_durations,
        gold_freshness,
        recorded_at
    from {{ ref('stg_audit__pipeline_runs') }}
    {% if is_incremental() -%}
        where
            recorded_at >= (
                select
                    coalesce(max(already_built.recorded_at), cast('-infinity' as timestamptz))
                    - interval '{{ var("incremental_lookback_hours") }} hours'
                from {{ this }} as already_built
            )
    {%- endif %}
),

final as (
    select
        cast(run_id as text) as run_id,
        cast(business_date as date) as business_date,
        cast(started_at as timestamptz) as started_at,
        cast(finished_at as timestamptz) as finished_at,
        cast(duration_seconds as numeric(12, 3)) as duration_seconds,
        cast(status as text) as status,
        cast(failed_step as text) as failed_step,
        {% for source_name in sources -%}
            {% for count in counts -%}
                cast({{ source_name }}_rows_{{ count }} as bigint) as {{ source_name }}_rows_{{ count }},  -- noqa: LT05
            {% endfor -%}
        {% endfor -%}
        cast(raw_gate_outcome as text) as raw_gate_outcome,
        cast(staging_gate_outcome as text) as staging_gate_outcome,
        cast(silver_gate_outcome as text) as silver_gate_outcome,
        cast(gold_gate_outcome as text) as gold_gate_outcome,
        -- Every gate the run reports passed (false when one failed or none was reported).
        cast(
            coalesce(
                (
                    select bool_and(gates.outcome = 'passed')
                    from jsonb_each_text(runs.gate_outcomes) as gates (layer, outcome)
                ),
                false
            ) as boolean
        ) as is_every_gate_passed,
        cast(step_durations as jsonb) as step_durations,
        cast(gold_freshness as jsonb) as gold_freshness,
        cast(recorded_at as timestamptz) as recorded_at
    from runs
)

select
    run_id,
    business_date,
    started_at,
    finished_at,
    duration_seconds,
    status,
    failed_step,
    {% for source_name in sources -%}
        {% for count in counts -%}
            {{ source_name }}_rows_{{ count }},
        {% endfor -%}
    {% endfor -%}
    raw_gate_outcome,
    staging_gate_outcome,
    silver_gate_outcome,
    gold_gate_outcome,
    is_every_gate_passed,
    step_durations,
    gold_freshness,
    recorded_at
from final
