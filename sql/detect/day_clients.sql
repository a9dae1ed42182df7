-- day_clients: every client host of the local day $day's mail ('' for lines whose message has none).
select distinct coalesce(host_ip, '') as client_ip
from mail_attributed($day::date)
order by client_ip
