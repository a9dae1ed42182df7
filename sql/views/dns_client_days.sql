-- dns_client_days: see data_lake/README.md for its columns.
create or replace view dns_client_days as select * from lake_dataset('dns_client_days');
