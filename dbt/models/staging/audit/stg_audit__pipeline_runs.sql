{%- set sources = ['admissions', 'patients', 'labs', 'vitals'] -%}
{%- set counts = ['received', 'loaded', 'quarantined'] -%}
{%- set layers = ['raw', 'staging', 'silver', 'gold'] -%}

with

runs as (
    select
        run_id,
        business_date,
        started_at,
        finished_at,
        status,
        failed_step,
        source_rows,
        gate_outcomes,
        step_durations,
        gold_freshness,
        recorded_at
    from {{ source('audit', 'pipeline_runs') }}
),

final as (
    select
        run_id,
        business_date,
        started_at,
        finished_at,
        lower(trim(status)) as status,
        failed_step,
        cast(extract(epoch from finished_at - started_at) as numeric(12, 3)) as duration_seconds,
        {% for source_name in sources -%}
            {% for count in counts -%}
                -- A count the orchestrator wrote as anything but a JSON number is unknown.
                case
                    when
                        jsonb_typeof(source_rows -> '{{ source_name }}' -> '{{ count }}')
                        = 'number'
                        then cast(source_rows -> '{{ source_name }}' ->> '{{ count }}' as bigint)
                end as {{ source_name }}_rows_{{ count }},
            {% endfor -%}
        {% endfor -%}
        {% for layer in layers -%}
            lower(gate_outcomes ->> '{{ layer }}') as {{ layer }}_gate_outcome,
        {% endfor -%}
        source_rows,
        gate_outcomes,
        step_durations,
        gold_freshness,
        recorded_at
    from runs
)

select * from final
