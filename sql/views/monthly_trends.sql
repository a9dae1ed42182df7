-- monthly_trends: see data_lake/README.md for its columns.
create or replace view monthly_trends as select * from lake_rollup('monthly_trends');
