-- days_done: how many days have a daily_trends row.
select count(*) as days
from daily_trends
