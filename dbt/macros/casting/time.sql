{#-
    Calendar and instant helpers whose results the session TimeZone and DateStyle never
    change (a zone, where one matters, is explicit).
-#}

{#-
    A timestamptz's calendar date in `timezone`. The explicit zone makes it independent of
    the session TimeZone.
-#}
{%- macro local_date(column, timezone) -%}
    cast(({{ column }} at time zone {{ sql_string_literal(timezone) }}) as date)
{%- endmacro -%}

{#- First day of a date's month; via timestamp (no zone) so the session TimeZone never applies. -#}
{%- macro month_start(date_column) -%}
    cast(date_trunc('month', cast({{ date_column }} as timestamp)) as date)
{%- endmacro -%}

{#-
    A timestamptz as fixed ISO 8601 text in UTC with microseconds (2026-03-12T00:19:22.000000Z):
    the same text under every session TimeZone and DateStyle, for keys built from instants.
-#}
{%- macro utc_iso_text(column) -%}
    to_char({{ column }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
{%- endmacro -%}
