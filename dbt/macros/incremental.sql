{#-
    The incremental watermark of a model that carries an `ingested_at` column: the newest
    ingestion instant it already holds, less incremental_lookback_hours (a drain or load
    transaction that started earlier but committed later is not missed). `-infinity` while the
    model is empty. A scalar subquery: Postgres evaluates it once, before the scan it filters,
    and answers it from the index on ingested_at.
-#}
{%- macro ingestion_watermark(relation=none) -%}
    {%- set relation = relation if relation is not none else this -%}
    (
        select
            coalesce(max(already_built.ingested_at), cast('-infinity' as timestamptz))
            - interval '{{ var("incremental_lookback_hours") }} hours'
        from {{ relation }} as already_built
    )
{%- endmacro -%}

{#-
    Pre-hook of an incremental fact: delete the fact's rows whose kept record is now
    quarantined (a lab result amended into the wrong unit, a vitals set whose lowest-offset
    copy is implausible), as a full refresh would not have them. Only records the staging
    table changed since the fact's watermark can have become quarantined, so the quarantine
    view is read from its ingested_at index, not scanned. Runs before the fact's own
    delete+insert, which then inserts valid rows only. Nothing to do on a full refresh.
-#}
{%- macro delete_facts_now_quarantined(key, quarantine) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as facts
        using {{ quarantine }} as rejected
        where
            facts.{{ key }} = rejected.{{ key }}
            and rejected.ingested_at >= {{ ingestion_watermark() }}
    {%- endif -%}
{%- endmacro -%}
