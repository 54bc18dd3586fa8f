{#-
    Nothing is silently dropped: every distinct raw record of a source is either staged (the
    model tested) or quarantined, exactly once. Returns one row (a failure) with the three
    counts when raw <> staged + quarantined.

    raw_source, raw_table: the raw table, read with raw_relation() (empty until the loader
        creates it), or with source() when raw_may_be_missing is false (admissions, whose
        staging reads raw with source() too).
    record_key: SQL expression of one raw record's identity, the one staging de-duplicates by
        (e.g. "{{ lab_record_key() }}"); raw columns may be qualified with raw_table.
    quarantine: the name of the source's quarantine model.
    ledger_source: the source's name in its file ledger (raw_source._carehouse_files): only
        raw rows of loads marked 'loaded' count. None for a source without a ledger (vitals).
    file_key: the raw column holding the ledger's file_id (CSV sources: _source_file_id);
        without it raw rows are matched to the ledger by their _dlt_load_id (labs).
    settled_lookback, key_column: for a raw table written while staging is built and tested
        (the vitals stream drains all the time): only the records ingested before the newest
        ingested_at staged or quarantined, less this interval, are reconciled, and staged
        and quarantined rows are counted among those records (by key_column). Every such
        record was committed before staging was last built (the drain rolls back any batch
        open longer than half the lookback), so the counts must match exactly; the newer
        ones are reconciled by a later run. None: every raw record, as loaded in batches.
-#}
{% test reconciles_with_raw(
    model,
    raw_source,
    raw_table,
    record_key,
    quarantine,
    ledger_source=none,
    raw_may_be_missing=true,
    file_key=none,
    settled_lookback=none,
    key_column=none
) %}
    {%- if settled_lookback is not none and key_column is none -%}
        {{ exceptions.raise_compiler_error(
            'reconciles_with_raw on ' ~ model ~ ': settled_lookback needs key_column'
        ) }}
    {%- endif -%}
    {%- set raw = reconciled_raw_table(raw_source, raw_table, raw_may_be_missing) -%}
    with

    {% if ledger_source is not none -%}
    committed as (
        select distinct ledger.{{ 'file_id' if file_key else 'load_id' }} as ledger_key
        from {{ reconciled_raw_table(raw_source, '_carehouse_files', raw_may_be_missing) }}
            as ledger
        where ledger.source = '{{ ledger_source }}' and ledger.status = 'loaded'
    ),

    {% endif -%}
    {% if settled_lookback is not none -%}
    settled as (
        select max(built.ingested_at) - interval '{{ settled_lookback }}' as before_instant
        from (
            select staged_rows.ingested_at from {{ model }} as staged_rows
            union all
            select quarantined_rows.ingested_at from {{ ref(quarantine) }} as quarantined_rows
        ) as built
    ),

    settled_keys as (
        select distinct {{ record_key }} as record_key
        from {{ raw }} as {{ raw_table }}
        where {{ raw_table }}._ingested_at < (select settled.before_instant from settled)
    ),

    raw_records as (
        select count(*) as record_count
        from settled_keys
    ),

    staged as (
        select count(*) as record_count
        from {{ model }} as staged_rows
        where staged_rows.{{ key_column }} in (select settled_keys.record_key from settled_keys)
    ),

    quarantined as (
        select count(*) as record_count
        from {{ ref(quarantine) }} as quarantined_rows
        where
            quarantined_rows.{{ key_column }} in (select settled_keys.record_key from settled_keys)
    ),
    {%- else %}
    raw_records as (
        select count(distinct {{ record_key }}) as record_count
        from {{ raw }} as {{ raw_table }}
        {%- if ledger_source is not none %}
        where {{ raw_table }}.{{ file_key or '_dlt_load_id' }} in (
            select committed.ledger_key from committed
        )
        {%- endif %}
    ),

    staged as (
        select count(*) as record_count
        from {{ model }}
    ),

    quarantined as (
        select count(*) as record_count
        from {{ ref(quarantine) }}
    ),
    {%- endif %}

    final as (
        select
            raw_records.record_count as raw_count,
            staged.record_count as staged_count,
            quarantined.record_count as quarantined_count
        from raw_records
        cross join staged
        cross join quarantined
    )

    select
        raw_count,
        staged_count,
        quarantined_count
    from final
    where raw_count <> staged_count + quarantined_count
{% endtest %}

{#- A raw table for reconciles_with_raw: raw_relation() if it may be missing, else source(). -#}
{%- macro reconciled_raw_table(source_name, table_name, may_be_missing) -%}
    {%- if may_be_missing -%}
        {{ raw_relation(source_name, table_name) }}
    {%- else -%}
        {{ source(source_name, table_name) }}
    {%- endif -%}
{%- endmacro -%}
