-- model_fits: the papers' model for one day (Musashi et al., eq. 1), no intercept:
--   Dq = m_s * N_from + m_p * N_pop, least squares over the day's intervals,
--   r2 = 1 - SS_res / SS_tot (SS_tot about the mean of Dq),
--   q = share of recipients delivered locally, n = (m_s - 2) / (4 (1 - q)),
--   m_sd, r2_sd: the residual Dq_obs - Dq_calc regressed on N_deferred.
-- A site without a DNS server ($has_dns false) has no Dq: every coefficient but q is null.
with iv as (
    select
        dq::double as dq,
        n_from::double as f,
        n_pop::double as p,
        n_deferred::double as d
    from intervals
    where day = $day and $has_dns::boolean  -- a site without a DNS server: no Dq, no fit
),

sums as (
    select
        sum(f * f) as ff,
        sum(f * p) as fp,
        sum(p * p) as pp,
        sum(f * dq) as fd,
        sum(p * dq) as pd,
        avg(dq) as mean_dq,
        count(*) as n_intervals
    from iv
),

coef as (
    select
        (fd * pp - pd * fp) / nullif(ff * pp - fp * fp, 0) as m_s,
        (pd * ff - fd * fp) / nullif(ff * pp - fp * fp, 0) as m_p,
        mean_dq,
        n_intervals
    from sums
),

residuals as (
    select
        iv.dq,
        iv.d,
        coef.mean_dq,
        iv.dq - (coef.m_s * iv.f + coef.m_p * iv.p) as resid
    from iv cross join coef
),

goodness as (
    select
        1 - sum(resid * resid) / nullif(sum((dq - mean_dq) * (dq - mean_dq)), 0) as r2,
        regr_slope(resid, d) as m_sd,
        regr_r2(resid, d) as r2_sd
    from residuals
),

deliveries as (
    select distinct
        queue_id,
        recipient,
        mailer in ('local', 'prog', '*file*', 'cyrus', 'cyrusv2', 'lmtp', 'virtual')
        or list_contains($local_domains::varchar[], recipient_domain) as is_local
    from mail_events
    where day = $day and event = 'to'
),

share as (
    select avg(case when is_local then 1.0 else 0.0 end) as q
    from deliveries
)

select
    $site::varchar as site,
    coef.m_s,
    coef.m_p,
    goodness.r2,
    share.q,
    (coef.m_s - 2) / nullif(4 * (1 - share.q), 0) as n,
    goodness.m_sd,
    goodness.r2_sd,
    coef.n_intervals
from coef cross join goodness cross join share
