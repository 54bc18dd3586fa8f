{#-
    The identity of one raw admission record: its trimmed admission_id, or, when the source
    left it blank, the row's own dlt id (such rows cannot be merged with anything and are each
    quarantined). Shared by the staging model and the reconciliation test so both count alike.
-#}
{%- macro admission_record_key(admission_id_column='admission_id', row_id_column='_dlt_id') -%}
    coalesce({{ clean_text(admission_id_column) }}, 'row:' || {{ row_id_column }})
{%- endmacro -%}
