-- history_fits: the model fitted on each of the days before $day (from $since on).
select
    day,
    m_s,
    m_p,
    r2
from model_fits
where day >= $since and day < $day and m_s is not null
order by day
