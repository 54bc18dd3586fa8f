{#-
    The time dbt snapshots stamp their records with: the current instant as a UTC wall-clock
    timestamp. dbt-postgres's default (now()::timestamp) is the session TimeZone's wall clock,
    so the same run under TimeZone America/New_York and Asia/Kolkata would record different
    times; this one does not. Matches dbt_valid_to_current '9999-12-31'::timestamp.
-#}
{% macro postgres__snapshot_get_time() -%}
    (now() at time zone 'UTC')
{%- endmacro %}
