{#-
    SCD Type 2 tests.

    exactly_one_current_row: every key (partition_by columns) has exactly one row satisfying
    current_condition. Returns each key with another count.

    contiguous_validity_ranges: per key, the validity ranges [valid_from, valid_to) ordered by
    valid_from tile time without gap or overlap: each range is non-empty, each valid_to equals
    the next range's valid_from, and the last one is open (valid_to = open_end). Returns
    every row that breaks one of these.
-#}
{% test exactly_one_current_row(model, partition_by, current_condition) %}
    {%- set key_columns = partition_by | join(', ') -%}
    select
        {{ key_columns }},
        count(*) filter (where {{ current_condition }}) as current_rows
    from {{ model }}
    group by {{ key_columns }}
    having count(*) filter (where {{ current_condition }}) <> 1
{% endtest %}

{% test contiguous_validity_ranges(model, partition_by, valid_from, valid_to, open_end) %}
    {%- set key_columns = partition_by | join(', ') -%}
    with

    ordered as (
        select
            {{ key_columns }},
            {{ valid_from }} as range_start,
            {{ valid_to }} as range_end,
            lead({{ valid_from }}) over (
                partition by {{ key_columns }}
                order by {{ valid_from }}
            ) as next_range_start
        from {{ model }}
    )

    select *
    from ordered
    where
        range_start is null
        or range_end is null
        or range_start >= range_end
        or (next_range_start is null and range_end <> {{ open_end }})
        or (next_range_start is not null and range_end <> next_range_start)
{% endtest %}
