-- trends_rollup(period_start, period_end): daily_trends from period_start up to period_end
-- (exclusive), one row per site: the totals, the median and range of the daily coefficients, the incident counts.
-- deferral_rate = deferred / to= lines; days = the days of the period that have a daily_trends row.
-- weekly_trends.sql and monthly_trends.sql name the period.
create or replace macro trends_rollup(period_start, period_end) as table
    select
        site,
        count(*) as days,
        min(day) as first_day,
        max(day) as last_day,
        sum(dq)::bigint as dq,
        sum(n_from)::bigint as n_from,
        sum(n_to)::bigint as n_to,
        sum(n_sent)::bigint as n_sent,
        sum(n_deferred)::bigint as n_deferred,
        sum(n_pop)::bigint as n_pop,
        sum(n_user_unknown)::bigint as n_user_unknown,
        sum(n_deferred) / nullif(sum(n_to), 0) as deferral_rate,
        median(m_s) as m_s,
        min(m_s) as m_s_min,
        max(m_s) as m_s_max,
        median(m_p) as m_p,
        median(r2) as r2,
        min(r2) as r2_min,
        median(q) as q,
        median(n) as n,
        sum(n_mmw_suspect)::bigint as n_mmw_suspect,
        sum(n_bulk_sender)::bigint as n_bulk_sender,
        sum(n_mailing_list)::bigint as n_mailing_list,
        sum(n_deferred_surge)::bigint as n_deferred_surge,
        sum(n_dns_anomaly)::bigint as n_dns_anomaly,
        count(*) filter (where n_mmw_suspect > 0) as days_with_mmw_suspect
    from daily_trends
    where day >= period_start and day < period_end
    group by site;
