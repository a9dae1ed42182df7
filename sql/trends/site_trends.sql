-- site_trends: every day of the site so far, with the day's totals, coefficients and incident counts,
-- and the median m_s and m_p of the 7 days up to it (a drifting coefficient shows against it).
select
    day,
    dq::bigint as dq,
    n_from::bigint as n_from,
    n_pop::bigint as n_pop,
    n_deferred::bigint as n_deferred,
    n_user_unknown::bigint as n_user_unknown,
    m_s,
    m_p,
    r2,
    n_mmw_suspect::bigint as n_mmw_suspect,
    n_deferred_surge::bigint as n_deferred_surge,
    n_dns_anomaly::bigint as n_dns_anomaly,
    median(m_s) over last_week as m_s_7d_median,
    median(m_p) over last_week as m_p_7d_median
from daily_trends
window last_week as (order by day range between interval 6 days preceding and current row)
order by day
