{#-
    The identity of one raw lab observation: its trimmed Observation.id, or the row's own dlt
    id when there is none (the loader quarantines those, so this is only a safety net).
-#}
{%- macro lab_record_key(observation_id_column='observation_id', row_id_column='_dlt_id') -%}
    coalesce({{ clean_text(observation_id_column) }}, 'row:' || {{ row_id_column }})
{%- endmacro -%}
