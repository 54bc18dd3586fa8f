{#-
    On-run-start hook (dbt_project.yml): fails the run before any model is built when the
    hospital timezone is not one Postgres knows; a view would otherwise be created and only
    fail when read.
-#}
{%- macro assert_known_timezone(timezone) -%}
    select now() at time zone {{ sql_string_literal(timezone) }} as checked_at
{%- endmacro -%}
