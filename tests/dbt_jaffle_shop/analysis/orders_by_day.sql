select order_date, count(*) from {{ ref('orders') }} group by 1
