-- page_weeks: every weekly_trends row (the trends page sorts them).
select *
from weekly_trends
