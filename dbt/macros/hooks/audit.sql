{#-
    The table the orchestrator writes one row per pipeline run into, read by
    gold.pipeline_run_audit (through stg_audit__pipeline_runs). Created by an on-run-start hook
    so every dbt invocation finds it, owned by the transformer in the `audit` schema (the
    bootstrap gives that schema to the transformer; sql/ is not changed for it). The
    orchestrator writes a run's row when the run starts and rewrites it when it ends (status,
    counts, gates, durations, freshness), setting recorded_at = now() on every write: the
    gold table picks up rows by recorded_at. The orchestrator creates the same table
    (carehouse.audit.schema.PIPELINE_RUNS_DDL) when it runs before dbt ever did: change both
    together; tests/audit/test_schema.py asserts they build the same table.

    JSON shapes (keys are free to grow; gold reads these). Step names are those of
    flows/pipeline.py (record.step): load-<source> per batch source (load-patients,
    load-admissions, load-labs), gate-raw, wait-warehouse, build-vitals-staging, build-silver,
    gate-silver, build-gold-next, gate-gold, wait-gold, publish, freshness, count-rows.
      source_rows     {"patients": {"received": 10, "loaded": 9, "quarantined": 1}, "admissions": ..., "labs": ...}
                      (one key per batch source loaded; gold also reads "vitals" when present)
      gate_outcomes   {"raw": "passed", "silver": "passed", "gold": "failed"} ("passed", "failed",
                      "error", or "not_run" for a gate the run never reached)
      failed_step     the step a failed run stopped at, e.g. "gate-gold", "build-silver", "load-labs"
      step_durations  {"load-patients": 1.8, "gate-raw": 0.9, "build-silver": 42.0, "gate-gold": 3.1, ...} (seconds)
      gold_freshness  {"fct_admissions": "2026-03-31T23:10:00Z", ...} (when each gold table was last published, carehouse.quality.freshness)
-#}
{%- macro create_audit_tables() -%}
    create table if not exists audit.pipeline_runs (
        run_id text primary key,
        business_date date not null,
        started_at timestamptz not null,
        finished_at timestamptz,
        status text not null,
        source_rows jsonb not null default '{}'::jsonb,
        gate_outcomes jsonb not null default '{}'::jsonb,
        step_durations jsonb not null default '{}'::jsonb,
        gold_freshness jsonb not null default '{}'::jsonb,
        recorded_at timestamptz not null default now()
    );
    alter table audit.pipeline_runs add column if not exists failed_step text;
    comment on table audit.pipeline_runs is
    'One row per pipeline run, written by the orchestrator; read by gold.pipeline_run_audit.'
{%- endmacro -%}
