{#- Text helpers: SQL string literals and the blank-means-null rule of CSV cells. -#}

{#- A text value as a quoted SQL string literal. -#}
{%- macro sql_string_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro -%}

{#- Blank or whitespace-only CSV cells mean "no value". -#}
{%- macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro -%}
