-- server_holes: the stretches of the day, at least $min_gap long, in which a server of $servers
-- logged no line that mmw parsed (mail events, DNS queries); the day's start and end count as
-- stamps, so a server whose log stops at 13:04 has a hole from 13:04 to the end of the day, and one
-- with no line at all a hole over the whole day. With each: the server's lines in the day, and the
-- minutes with a line of it in the $near before the hole and in the $near after it (minutes, not
-- lines: a burst of a thousand lines in a minute says little of how busy a server is).
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

counted as (
    select
        server,
        count(*) as day_lines
    from lines
    group by server
),

servers as (
    select unnest($servers::varchar[]) as server
),

stamps as (
    select
        server,
        ts
    from lines
    union all
    select
        server,
        $day_start::timestamptz as ts
    from servers
    union all
    select
        server,
        $day_end::timestamptz as ts
    from servers
),

stepped as (
    select
        server,
        lag(ts) over (partition by server order by ts) as hole_start,
        ts as hole_end
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
    count(distinct date_trunc('minute', lines.ts)) filter (where lines.ts <= holes.hole_start) as minutes_before,
    count(distinct date_trunc('minute', lines.ts)) filter (where lines.ts >= holes.hole_end) as minutes_after
from holes
left join counted on holes.server = counted.server
left join lines
    on
        holes.server = lines.server
        and lines.ts >= holes.hole_start - $near::interval
        and lines.ts < holes.hole_end + $near::interval
group by holes.server, holes.hole_start, holes.hole_end
order by holes.server, holes.hole_start
