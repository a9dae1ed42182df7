-- daily_trends: see data_lake/README.md for its columns.
create or replace view daily_trends as select * from lake_dataset('daily_trends');
