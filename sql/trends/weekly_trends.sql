-- weekly_trends: one row per (site, ISO week) for the week that starts on Monday $week_start
-- (the columns: views/_trends_rollup.sql).
select
    site,
    strftime($week_start::date, '%G-W%V') as week,
    $week_start::date as week_start,
    * exclude (site)
from trends_rollup($week_start::date, $week_start::date + interval 7 day)
