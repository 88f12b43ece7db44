{% macro rfm_segment(r, f) -%}
    case
        when {{ r }} = 5 and {{ f }} >= 4 then 'Champions'
        when {{ r }} between 3 and 4 and {{ f }} >= 4 then 'Loyal'
        when {{ r }} >= 4 and {{ f }} between 2 and 3 then 'Potential loyalists'
        when {{ r }} = 5 and {{ f }} = 1 then 'New'
        when {{ r }} = 4 and {{ f }} = 1 then 'Promising'
        when {{ r }} = 3 and {{ f }} = 3 then 'Need attention'
        when {{ r }} <= 2 and {{ f }} = 5 then 'Cannot lose them'
        when {{ r }} <= 2 and {{ f }} between 3 and 4 then 'At risk'
        when {{ r }} between 2 and 3 and {{ f }} <= 2 then 'Hibernating'
        when {{ r }} = 1 and {{ f }} <= 2 then 'Lost'
    end
{%- endmacro %}
