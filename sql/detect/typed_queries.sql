-- typed_queries: how many of $client_ip's DNS queries of $day name their type (formats that log it).
select count(*) filter (where qtype is not null) as typed
from dns_queries
where day = $day and client_ip = $client_ip
