-- server_holes: the stretches of the day, at least $min_gap long, in which a server of $servers
-- logged no line that mmw parsed (mail events, DNS queries); the day's start and end count as
-- stamps, so a server whose log stops at 13:04 has a hole from 13:04 to the end of the day, and one
-- with no line at all a hole over the whole day. With each: the server's lines in the day, and the
-- minutes with a line of it in the $near before the hole and in the $near after it (minutes, not
-- lines: a burst of a thousand lines in a minute says little of how busy a server is).
-- The lines are folded into minutes first (per server, each minute with a line: its first and last
-- stamp and its lines), so the window and the join below see at most 1,440 rows per server, however
-- many million lines a day has; the holes and counts are the same as over the lines themselves.
with lines as (
    select
        server,
        ts
    from mail_events
    where
        day = $day
        and ts >= $day_start::timestamptz
        and ts < $day_end::timestamptz
        and list_contains($servers::varchar[], server)
    union all
    select
        server,
        ts
    from dns_queries
    where
        day = $day
        and ts >= $day_start::timestamptz
        and ts < $day_end::timestamptz
        and list_contains($servers::varchar[], server)
),

minutes as (
    select
        server,
        date_trunc('minute', ts) as minute_start,
        min(ts) as first_ts,
        max(ts) as last_ts,
        count(*) as n
    from lines
    group by server, minute_start
),

counted as (
    select
        server,
        sum(n)::bigint as day_lines
    from minutes
    group by server
),

servers as (
    select unnest($servers::varchar[]) as server
),

stamps as (
    select
        server,
        first_ts,
        last_ts
    from minutes
    union all
    select
        server,
        $day_start::timestamptz as first_ts,
        $day_start::timestamptz as last_ts
    from servers
    union all
    select
        server,
        $day_end::timestamptz as first_ts,
        $day_end::timestamptz as last_ts
    from servers
),

stepped as (
    select
        server,
        lag(last_ts) over (partition by server order by first_ts, last_ts) as hole_start,
        first_ts as hole_end
    from stamps
),

holes as (
    select
        server,
        hole_start,
        hole_end
    from stepped
    where hole_end - hole_start >= $min_gap::interval
)

select
    holes.server,
    holes.hole_start,
    holes.hole_end,
    coalesce(any_value(counted.day_lines), 0) as day_lines,
    count(minutes.minute_start) filter (
        where minutes.last_ts <= holes.hole_start and minutes.last_ts >= holes.hole_start - $near::interval
    ) as minutes_before,
    count(minutes.minute_start) filter (
        where minutes.first_ts >= holes.hole_end and minutes.first_ts < holes.hole_end + $near::interval
    ) as minutes_after
from holes
left join counted on holes.server = counted.server
left join minutes
    on
        holes.server = minutes.server
        and minutes.last_ts >= holes.hole_start - $near::interval
        and minutes.first_ts < holes.hole_end + $near::interval
group by holes.server, holes.hole_start, holes.hole_end
order by holes.server, holes.hole_start
