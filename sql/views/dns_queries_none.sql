-- dns_queries with no rows: the view of a lake whose site has no DNS server, so that analysts and
-- every query over DNS find the view of contract section 4 (with a DNS part's columns,
-- mmw_tasks/parse/dns.py) and no row in it. Replaced by views/dns_queries.sql once DNS parts exist.
create or replace view dns_queries as
select
    null::timestamptz as ts,
    null::varchar as server,
    null::varchar as file,
    null::bigint as line_no,
    null::boolean as repeat,
    null::varchar as client_ip,
    null::integer as client_port,
    null::varchar as client_name,
    null::varchar as qname,
    null::varchar as qtype,
    null::integer as bytes,
    null::date as day
where false;
