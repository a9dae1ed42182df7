-- page_days: every daily_trends row, by day (the trends page's days and sparklines).
select *
from daily_trends
order by day
