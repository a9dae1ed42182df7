-- weekly_trends: see data_lake/README.md for its columns.
create or replace view weekly_trends as select * from lake_rollup('weekly_trends');
