-- monthly_trends: one row per (site, calendar month) for the month that starts on $month_start
-- (the columns: views/_trends_rollup.sql).
select
    site,
    strftime($month_start::date, '%Y-%m') as month,
    $month_start::date as month_start,
    * exclude (site)
from trends_rollup($month_start::date, ($month_start::date + interval 1 month)::date)
