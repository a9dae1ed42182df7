-- day_domain_deferrals: the deliveries of $day by interval and recipient domain.
select *
from domain_deferrals
where day = $day
