{#-
    A raw table the loaders may not have created yet. dlt creates raw_patients.patients and
    raw_labs.observations (and their ledgers) on a source's first load, and the vitals drain
    creates raw_vitals.vitals on its first start; the transformer cannot create tables in
    the loader's schemas. Until then a staging model reads an empty relation with the raw
    table's columns and types instead of failing the whole build, so a warehouse fed by
    admissions alone still builds. The next build after the first load reads the table.

    source() is always called, so lineage (and the "only staging reads sources" rule) is the
    same either way.
-#}
{%- macro raw_relation(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and load_relation(relation) is none -%}
        {%- set columns = raw_table_columns(source_name, table_name) -%}
        (
            select
                {%- for column in columns %}
                cast(null as {{ column[1] }}) as {{ column[0] }}{{ "," if not loop.last }}
                {%- endfor %}
            where false
        )
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro -%}

{#- The columns and types of the raw tables, as the loaders create them. -#}
{%- macro raw_table_columns(source_name, table_name) -%}
    {#- CSV rows (patients, admissions) carry only their line and their file's ledger key. -#}
    {%- set file_row_key = [
        ('_source_line', 'bigint'),
        ('_source_file_id', 'bigint'),
    ] -%}
    {%- set file_metadata = [
        ('_source_file', 'text'),
        ('_source_line', 'bigint'),
        ('_source_hash', 'text'),
        ('_ingested_at', 'timestamptz'),
        ('_dlt_load_id', 'text'),
        ('_dlt_id', 'text'),
    ] -%}
    {%- set tables = {
        'raw_patients.patients': [
            ('patient_id', 'text'),
            ('given_name', 'text'),
            ('family_name', 'text'),
            ('birth_date', 'text'),
            ('sex', 'text'),
            ('address_line', 'text'),
            ('postal_code', 'text'),
            ('insurer_id', 'text'),
            ('plan', 'text'),
            ('updated_at', 'text'),
            ('_snapshot_date', 'date'),
        ] + file_row_key,
        'raw_labs.observations': [
            ('observation_id', 'text'),
            ('status', 'text'),
            ('category_code', 'text'),
            ('loinc_code', 'text'),
            ('loinc_display', 'text'),
            ('patient_ref', 'text'),
            ('encounter_ref', 'text'),
            ('effective_at', 'text'),
            ('issued', 'text'),
            ('value_type', 'text'),
            ('value_numeric', 'numeric(38, 9)'),
            ('value_unit', 'text'),
            ('value_text', 'text'),
            ('reference_low', 'numeric(38, 9)'),
            ('reference_high', 'numeric(38, 9)'),
            ('interpretation_code', 'text'),
            ('resource', 'jsonb'),
        ] + file_metadata,
        'raw_vitals.vitals': [
            ('kafka_topic', 'text'),
            ('kafka_partition', 'integer'),
            ('kafka_offset', 'bigint'),
            ('kafka_timestamp', 'timestamptz'),
            ('message_key', 'bytea'),
            ('payload', 'jsonb'),
            ('device_id', 'text'),
            ('patient_id', 'text'),
            ('observed_at', 'timestamptz'),
            ('heart_rate', 'numeric'),
            ('resp_rate', 'numeric'),
            ('systolic_bp', 'numeric'),
            ('diastolic_bp', 'numeric'),
            ('spo2', 'numeric'),
            ('spo2_scale', 'smallint'),
            ('on_oxygen', 'boolean'),
            ('consciousness', 'text'),
            ('temperature_c', 'numeric'),
            ('_ingested_at', 'timestamptz'),
            ('_drain_batch_id', 'text'),
        ],
    } -%}
    {%- set ledger = [
        ('file_id', 'bigint'),
        ('source', 'text'),
        ('file_name', 'text'),
        ('content_sha256', 'text'),
        ('load_id', 'text'),
        ('ingested_at', 'timestamptz'),
        ('status', 'text'),
    ] -%}
    {%- set key = source_name ~ '.' ~ table_name -%}
    {%- if table_name == '_carehouse_files' -%}
        {{ return(ledger) }}
    {%- elif key in tables -%}
        {{ return(tables[key]) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error('no raw column list for ' ~ key) }}
    {%- endif -%}
{%- endmacro -%}

{#-
    The dlt load ids the source's file ledger marks 'loaded': raw rows count only when their
    _dlt_load_id is one of these (rows of an interrupted load are rolled back by the next).
-#}
{%- macro committed_load_ids(source_name, loader_source) -%}
    select distinct load_id
    from {{ raw_relation(source_name, '_carehouse_files') }} as ledger
    where ledger.source = '{{ loader_source }}' and ledger.status = 'loaded'
{%- endmacro -%}

{#-
    The files of a CSV source (patients, admissions) that the ledger marks 'loaded', with what
    is known once per file: a raw row's _source_file_id is one of these file_id values, so its
    file name, content hash, load id and ingestion time are this one join away. Rows of an
    interrupted load match no committed file (the next load rolls them back).
    ledger: the source's _carehouse_files relation (source() or raw_relation()).
-#}
{%- macro committed_files(ledger, loader_source) -%}
    select
        ledger.file_id,
        ledger.file_name,
        ledger.content_sha256,
        ledger.load_id,
        ledger.ingested_at
    from {{ ledger }} as ledger
    where ledger.source = '{{ loader_source }}' and ledger.status = 'loaded'
{%- endmacro -%}

{#-
    A CSV raw row's own key, '<_source_file_id>:<_source_line>': its file's ledger id and its
    line, unique across loads (what identifies a record the source sent without an id).
-#}
{%- macro raw_row_key() -%}
    _source_file_id || ':' || _source_line
{%- endmacro -%}
