{#
    Schemas follow layers: a folder's custom schema (staging, silver, gold, quarantine,
    snapshots) is used verbatim, not prefixed with the target schema as dbt does by default,
    so every environment has the same layout the bootstrap grants were written for.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
