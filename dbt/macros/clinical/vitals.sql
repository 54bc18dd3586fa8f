{#-
    The key of one vital-signs observation set: the monitor and the instant, as
    '<device_id>@<observed_at in UTC, ISO 8601, microseconds>'. The same text under every
    session TimeZone.
-#}
{%- macro observation_set_id(device_id_column, observed_at_column) -%}
    {{ device_id_column }} || '@' || {{ utc_iso_text(observed_at_column) }}
{%- endmacro -%}

{#-
    The start of the clock hour an instant falls in, on the clocks of `timezone` (the
    hospital's), as a timestamptz: explicit, so the session TimeZone never moves a boundary.
-#}
{%- macro hour_start(column, timezone) -%}
    date_trunc('hour', {{ column }}, {{ sql_string_literal(timezone) }})
{%- endmacro -%}

{#-
    The identity of one raw vital-signs observation set: its observation_set_id from the
    trimmed device_id (blank as '') and observed_at. The staging model de-duplicates by the
    same pair; the reconciliation test counts raw sets by it.
-#}
{%- macro vitals_record_key(device_id_column='device_id', observed_at_column='observed_at') -%}
    {%- set device_id = "coalesce(" ~ clean_text(device_id_column) ~ ", '')" -%}
    {{ observation_set_id(device_id, observed_at_column) }}
{%- endmacro -%}
