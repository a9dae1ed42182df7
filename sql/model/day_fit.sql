-- day_fit: the model fitted on $day, as the fit stage returns it and the detect stage reads it.
select * exclude (site, day)
from model_fits
where day = $day
