{#
    Safe casts: return null instead of raising when a text value cannot be typed, so one bad
    CSV cell never fails the whole build. Callers compare the result with the input to route
    the record to quarantine with a reason. pg_input_is_valid needs PostgreSQL 16 or later; the
    regular expressions additionally pin the accepted spelling to ISO 8601, so values such as
    '03/04/2026' are never read through a DateStyle-dependent guess.
#}

{%- macro iso_naive_timestamp_pattern() -%}
    '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$'
{%- endmacro -%}

{%- macro iso_offset_timestamp_pattern() -%}
    '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$'
{%- endmacro -%}

{#
    An ISO 8601 text timestamp as timestamptz. A value with an offset (or Z) is an absolute
    instant; a naive value is wall-clock time in `timezone` (the hospital's). The session
    TimeZone never enters the result.
#}
{%- macro safe_cast_timestamptz(column, timezone) -%}
    case
        when
            {{ column }} ~ {{ iso_naive_timestamp_pattern() }}
            and pg_input_is_valid({{ column }}, 'timestamp')
            then cast({{ column }} as timestamp) at time zone {{ sql_string_literal(timezone) }}
        when
            {{ column }} ~ {{ iso_offset_timestamp_pattern() }}
            and pg_input_is_valid({{ column }}, 'timestamptz')
            then cast({{ column }} as timestamptz)
    end
{%- endmacro -%}

{#
    A plain decimal text as numeric(precision, scale); null when it has a sign, more integer
    digits than fit, or more decimals than `scale` (rounding money silently is a change of value).
#}
{%- macro safe_cast_numeric(column, precision, scale) -%}
    {%- set integer_digits = precision - scale -%}
    case
        when {{ column }} ~ '^\d{1,{{ integer_digits }}}(\.\d{0,{{ scale }}})?$'
            then cast({{ column }} as numeric({{ precision }}, {{ scale }}))
    end
{%- endmacro -%}

{#-
    An ISO 8601 calendar date (YYYY-MM-DD) as date; null for any other spelling or for a day
    that does not exist (2026-02-30). The fixed pattern keeps DateStyle out of it.
-#}
{%- macro safe_cast_date(column) -%}
    case
        when {{ column }} ~ '^\d{4}-\d{2}-\d{2}$' and pg_input_is_valid({{ column }}, 'date')
            then cast({{ column }} as date)
    end
{%- endmacro -%}
