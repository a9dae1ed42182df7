-- day_fit: the model fitted on $day (no row before the fit stage has run).
select * exclude (site, day)
from model_fits
where day = $day
