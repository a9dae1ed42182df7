-- daily_trends: one row per (site, day): the day's totals, the fitted model, and incident counts.
with totals as (
    select
        sum(dq) as dq,
        sum(n_from) as n_from,
        sum(n_to) as n_to,
        sum(n_sent) as n_sent,
        sum(n_deferred) as n_deferred,
        sum(n_pop) as n_pop,
        sum(n_user_unknown) as n_user_unknown
    from intervals
    where day = $day
),

fit as (
    select
        m_s,
        m_p,
        r2,
        q,
        n,
        m_sd,
        r2_sd
    from model_fits
    where day = $day
),

found as (
    select
        count(*) filter (where kind = 'mmw_suspect') as n_mmw_suspect,
        count(*) filter (where kind = 'bulk_sender') as n_bulk_sender,
        count(*) filter (where kind = 'mailing_list') as n_mailing_list,
        count(*) filter (where kind = 'deferred_surge') as n_deferred_surge,
        count(*) filter (where kind = 'dns_anomaly') as n_dns_anomaly
    from incidents
    where day = $day
)

select
    $site::varchar as site,
    totals.*,
    fit.*,
    found.*
from totals
left join fit on true
cross join found
