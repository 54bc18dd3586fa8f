{#-
    The identity of one raw admission record: its trimmed admission_id, or, when the source
    left it blank, the row's own key '<file id>:<line>' (such rows cannot be merged with
    anything and are each quarantined). Shared by the staging model and the reconciliation
    test so both count alike.
-#}
{%- macro admission_record_key(admission_id_column='admission_id') -%}
    coalesce({{ clean_text(admission_id_column) }}, 'row:' || {{ raw_row_key() }})
{%- endmacro -%}

{#-
    A department name as typed in the ADT system, in the form of the department codes: leading
    and trailing whitespace (line breaks included: a quoted CSV field may end in one) removed,
    upper-cased, runs of whitespace and hyphens as one underscore ('  general-medicine\n' ->
    GENERAL_MEDICINE); null when nothing is left. Applied to the raw value and to the
    department_aliases seed alike.
-#}
{%- macro normalize_department_name(column) -%}
    nullif(
        upper(regexp_replace(regexp_replace({{ column }}, '^\s+|\s+$', '', 'g'), '[\s-]+', '_', 'g')),
        ''
    )
{%- endmacro -%}
