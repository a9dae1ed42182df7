-- novel_recipients: per judged entity and bin, the recipients it mailed for the first time today
-- that it had not mailed on any of the trailing days (address_book, from $since to the day
-- before $day): an address book being emptied. Local recipients refused as unknown count too.
-- Only for entities the book knows at all (a host never seen before has no usual recipients).
with book as (
    select distinct
        client_ip,
        sender,
        rcpt
    from address_book
    where day >= $since and day < $day
),

known as (
    select distinct
        client_ip,
        sender
    from book
)

select
    e.client_ip,
    e.sender,
    e.bin,
    count(*) as novel_recipients
from judged_events as e
semi join known as k
    on e.client_ip = k.client_ip and e.sender is not distinct from k.sender
anti join book as b
    on
        e.client_ip = b.client_ip
        and e.sender is not distinct from b.sender
        and md5_number_lower(e.recipient) = b.rcpt
where e.new_recipient
group by e.client_ip, e.sender, e.bin
