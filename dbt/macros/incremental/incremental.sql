{#-
    The incremental watermark of a model that carries an `ingested_at` column: the newest
    ingestion instant it already holds, less a lookback (a drain or load transaction that
    started earlier but committed later is not missed): incremental_lookback_hours, or the
    `lookback` interval given (the vitals stream's short one); `-infinity` while
    the model is empty. Read when the model runs (from the index on ingested_at) and inlined
    as a literal: the planner then sees how few rows lie past it and reads them by index,
    where a subquery's value is unknown at planning time and a third of the table is
    assumed, so the whole table would be scanned.
-#}
{%- macro ingestion_watermark(relation=none, lookback=none) -%}
    {%- set relation = relation if relation is not none else this -%}
    {%- set lookback = lookback if lookback is not none
        else var("incremental_lookback_hours") ~ ' hours' -%}
    {%- if execute -%}
        {%- set query -%}
            select coalesce(
                to_char(
                    max(already_built.ingested_at) at time zone 'UTC'
                    - interval '{{ lookback }}',
                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
                ),
                '-infinity'
            )
            from {{ relation }} as already_built
        {%- endset -%}
        {%- set watermark = run_query(query).columns[0].values()[0] -%}
    {%- else -%}
        {%- set watermark = '-infinity' -%}
    {%- endif -%}
    cast('{{ watermark }}' as timestamptz)
{%- endmacro -%}

{#-
    Pre-hook of an incremental fact: delete the fact's rows whose kept record is now
    quarantined (a lab result amended into the wrong unit, a vitals set whose lowest-offset
    copy is implausible), as a full refresh would not have them. Only records the staging
    table changed since the fact's watermark can have become quarantined, so the quarantine
    view is read from its ingested_at index, not scanned. Runs before the fact's own
    delete+insert, which then inserts valid rows only. Nothing to do on a full refresh.
-#}
{%- macro delete_facts_now_quarantined(key, quarantine, lookback=none) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as facts
        using {{ quarantine }} as rejected
        where
            facts.{{ key }} = rejected.{{ key }}
            and rejected.ingested_at >= {{ ingestion_watermark(lookback=lookback) }}
    {%- endif -%}
{%- endmacro -%}

{#-
    Post-hook of an incremental staging table: analyze it when it has no statistics, i.e.
    when this run built it in full (created, or rebuilt by --full-refresh). The readers'
    watermark filter is then planned as the index scan of a few rows it is; without
    statistics the planner assumes a third of the table and scans all of it. An incremental
    run leaves the statistics to autovacuum: analyzing a million rows every micro-batch would
    cost more than the batch.
-#}
{%- macro analyze_when_built_in_full() -%}
    {%- if execute -%}
        {%- set query -%}
            select count(*) from pg_catalog.pg_stats
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
        {%- endset -%}
        {%- if run_query(query).columns[0].values()[0] == 0 -%}
            analyze {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro -%}

{#-
    The lookback of the vitals stream's incremental models (vitals_lookback_seconds): the
    drain rolls back any micro-batch whose transaction is still open after half of it, so
    it covers every transaction that committed out of order, where the batch sources' hours
    would make every refresh of a stream re-read hours of messages.
-#}
{%- macro vitals_lookback() -%}
    {{- return((var('vitals_lookback_seconds') | int) ~ ' seconds') -}}
{%- endmacro -%}
