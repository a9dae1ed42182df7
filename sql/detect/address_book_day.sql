-- address_book_day: every (entity, recipient) of the day's judged events, the recipient as a
-- 64-bit hash of its address (md5): what novel_recipients.sql compares later days with.
select distinct
    $site::varchar as site,
    client_ip,
    sender,
    md5_number_lower(recipient) as rcpt
from judged_events
where new_recipient
order by client_ip, sender, rcpt
