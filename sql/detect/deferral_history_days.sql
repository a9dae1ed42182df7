-- deferral_history_days: how many days before $day (from $since on) have delivery outcomes at all
-- (a domain's usual deferrals are its median over these days, zero on the days it had none).
select count(distinct day) as days
from domain_deferrals
where day >= $since and day < $day
