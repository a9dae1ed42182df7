-- page_months: every monthly_trends row (the trends page sorts them).
select *
from monthly_trends
