{#-
    NEWS2 (National Early Warning Score 2, Royal College of Physicians, 2017), one macro per
    parameter, exactly the table in docs/warehouse.md. Each takes SQL expressions and returns
    a SQL expression.

    Measurements are numeric and may fall between the table's integer (or one-decimal) edges,
    so every band is read as "up to and including its upper edge": respiration <= 8 -> 3,
    > 8 and <= 11 -> 1, > 11 and <= 20 -> 0, ... ; temperature <= 35.0 -> 3, > 35.0 and
    <= 36.0 -> 1, ... (35.05 scores 1, 36.05 scores 0). A missing measurement (null) has no
    score: the total and the band of that observation set are then unknown (null).
-#}

{%- macro news2_respiration_score(respiration_rate) -%}
    case
        when {{ respiration_rate }} is null then null
        when {{ respiration_rate }} <= 8 then 3
        when {{ respiration_rate }} <= 11 then 1
        when {{ respiration_rate }} <= 20 then 0
        when {{ respiration_rate }} <= 24 then 2
        else 3
    end
{%- endmacro -%}

{#-
    SpO2 on scale 1 (the default) or scale 2 (hypercapnic respiratory failure, prescribed by a
    clinician: any scale other than 2 is read as 1). On scale 2, saturations above 92 score 0
    on air and 1 / 2 / 3 on oxygen (93-94 / 95-96 / >= 97). Supplemental oxygen itself scores
    separately (news2_oxygen_score). An unknown oxygen status on scale 2 above 92 is unknown.
-#}
{%- macro news2_spo2_score(spo2, scale, is_on_oxygen) -%}
    case
        when {{ spo2 }} is null then null
        when coalesce({{ scale }}, 1) = 2 then
            case
                when {{ spo2 }} <= 83 then 3
                when {{ spo2 }} <= 85 then 2
                when {{ spo2 }} <= 87 then 1
                when {{ spo2 }} <= 92 then 0
                when {{ is_on_oxygen }} is null then null
                when not {{ is_on_oxygen }} then 0
                when {{ spo2 }} <= 94 then 1
                when {{ spo2 }} <= 96 then 2
                else 3
            end
        when {{ spo2 }} <= 91 then 3
        when {{ spo2 }} <= 93 then 2
        when {{ spo2 }} <= 95 then 1
        else 0
    end
{%- endmacro -%}

{#- Supplemental oxygen adds 2; air scores 0. -#}
{%- macro news2_oxygen_score(is_on_oxygen) -%}
    case
        when {{ is_on_oxygen }} is null then null
        when {{ is_on_oxygen }} then 2
        else 0
    end
{%- endmacro -%}

{%- macro news2_systolic_score(systolic_bp) -%}
    case
        when {{ systolic_bp }} is null then null
        when {{ systolic_bp }} <= 90 then 3
        when {{ systolic_bp }} <= 100 then 2
        when {{ systolic_bp }} <= 110 then 1
        when {{ systolic_bp }} <= 219 then 0
        else 3
    end
{%- endmacro -%}

{%- macro news2_pulse_score(pulse_rate) -%}
    case
        when {{ pulse_rate }} is null then null
        when {{ pulse_rate }} <= 40 then 3
        when {{ pulse_rate }} <= 50 then 1
        when {{ pulse_rate }} <= 90 then 0
        when {{ pulse_rate }} <= 110 then 1
        when {{ pulse_rate }} <= 130 then 2
        else 3
    end
{%- endmacro -%}

{%- macro news2_temperature_score(temperature) -%}
    case
        when {{ temperature }} is null then null
        when {{ temperature }} <= 35.0 then 3
        when {{ temperature }} <= 36.0 then 1
        when {{ temperature }} <= 38.0 then 0
        when {{ temperature }} <= 39.0 then 1
        else 2
    end
{%- endmacro -%}

{#-
    ACVPU: Alert scores 0; new Confusion, Voice, Pain or Unresponsive score 3. Accepts the
    letter or the word, in any case; anything else is unknown (null).
-#}
{%- macro news2_consciousness_score(consciousness) -%}
    case upper(trim({{ consciousness }}))
        when 'A' then 0
        when 'ALERT' then 0
        when 'C' then 3
        when 'CONFUSION' then 3
        when 'NEW CONFUSION' then 3
        when 'V' then 3
        when 'VOICE' then 3
        when 'P' then 3
        when 'PAIN' then 3
        when 'U' then 3
        when 'UNRESPONSIVE' then 3
    end
{%- endmacro -%}

{#- The aggregate score 0-20: null when any parameter score is unknown. -#}
{%- macro news2_total_score(scores) -%}
    ({{ scores | join(' + ') }})
{%- endmacro -%}

{#- The highest single parameter score among those known (greatest() skips nulls). -#}
{%- macro news2_max_single_score(scores) -%}
    greatest({{ scores | join(', ') }})
{%- endmacro -%}

{#-
    Clinical response band: high (total >= 7), medium (5-6), low_medium (0-4 with a single
    parameter scoring 3: urgent ward review), low (0-4). Null when the total is unknown.
-#}
{%- macro news2_band(total_score, max_single_score) -%}
    case
        when {{ total_score }} is null then null
        when {{ total_score }} >= 7 then 'high'
        when {{ total_score }} >= 5 then 'medium'
        when {{ max_single_score }} = 3 then 'low_medium'
        else 'low'
    end
{%- endmacro -%}

{#-
    An alert is raised when the total is 5 or more or any single parameter scores 3. For an
    incomplete set the alert is still true when the scores present already prove it (a 3, or
    a partial sum of 5 or more), and unknown (null) otherwise.
-#}
{%- macro news2_is_alert(scores) -%}
    case
        when
            {% for score in scores %}coalesce({{ score }}, 0){% if not loop.last %} + {% endif %}{% endfor %} >= 5
            or greatest({{ scores | join(', ') }}) = 3
            then true
        when {{ news2_total_score(scores) }} is null then null
        else false
    end
{%- endmacro -%}

{#-
    NEWS2 for every row of `relation` (a CTE or relation name), as one select: the relation's
    own columns, then the seven parameter scores (respiration_score, spo2_score,
    oxygen_score, systolic_score, pulse_score, consciousness_score, temperature_score),
    total_score, max_single_score, band and is_alert. The other arguments name the
    relation's measurement columns; each defaults to a column named like itself. Shared by
    int_vitals_news2_scored and int_news2_reference_cases_scored, so the reference cases pin
    exactly the scoring the bedside observations get.
-#}
{%- macro news2_scored(
    relation,
    respiration_rate='respiration_rate',
    spo2='spo2',
    spo2_scale='spo2_scale',
    is_on_oxygen='is_on_oxygen',
    systolic_bp='systolic_bp',
    pulse_rate='pulse_rate',
    consciousness='consciousness',
    temperature='temperature'
) -%}
    {%- set scores = [
        'parameter_scores.respiration_score',
        'parameter_scores.spo2_score',
        'parameter_scores.oxygen_score',
        'parameter_scores.systolic_score',
        'parameter_scores.pulse_score',
        'parameter_scores.consciousness_score',
        'parameter_scores.temperature_score',
    ] -%}
    select
        parameter_scores.*,
        {{ news2_total_score(scores) }} as total_score,
        {{ news2_max_single_score(scores) }} as max_single_score,
        {{ news2_band(news2_total_score(scores), news2_max_single_score(scores)) }} as band,
        {{ news2_is_alert(scores) }} as is_alert
    from (
        select
            {{ relation }}.*,
            {{ news2_respiration_score(respiration_rate) }} as respiration_score,
            {{ news2_spo2_score(spo2, spo2_scale, is_on_oxygen) }} as spo2_score,
            {{ news2_oxygen_score(is_on_oxygen) }} as oxygen_score,
            {{ news2_systolic_score(systolic_bp) }} as systolic_score,
            {{ news2_pulse_score(pulse_rate) }} as pulse_score,
            {{ news2_consciousness_score(consciousness) }} as consciousness_score,
            {{ news2_temperature_score(temperature) }} as temperature_score
        from {{ relation }}
    ) as parameter_scores
{%- endmacro -%}
