-- day_incidents: the incidents the detect stage found on $day.
select *
from incidents
where day = $day
order by start, kind
