-- mail_attributed(d): the local day d's from=, to= and reject lines, each with the sender and the
-- client host of its message. A to= line or a "User unknown" rejection joins its from= by queue id
-- (on the same server; a message's first from= when a queue id has several),
-- so a worm's refused recipients land on the host that sent them even when its senders are forged;
-- a reject without a queue id (Postfix NOQUEUE) names its client itself.
create or replace macro mail_attributed(d) as table
    with senders as (
        select
            server,
            queue_id,
            -- the first line's value that is not null (arg_min keeps one row per group: it spills)
            arg_min(sender, (ts, file, line_no)) filter (where sender is not null) as sender,
            arg_min(client_ip, (ts, file, line_no)) filter (where client_ip is not null) as client_ip
        from mail_events
        where day = d and event = 'from' and queue_id is not null
        group by server, queue_id
    )

    select
        e.*,
        coalesce(e.sender, s.sender) as msg_sender,
        coalesce(case when e.event in ('from', 'reject') then e.client_ip end, s.client_ip) as host_ip
    from mail_events as e
    left join senders as s on e.server = s.server and e.queue_id = s.queue_id
    -- d is the macro's parameter, not a column of either side
    where e.day = d and e.event in ('from', 'to', 'reject');  -- noqa: RF02
