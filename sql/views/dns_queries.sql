-- dns_queries: see data_lake/README.md for its columns.
create or replace view dns_queries as select * from lake_dataset('dns_queries');
