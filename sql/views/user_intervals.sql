-- user_intervals: see data_lake/README.md for its columns.
create or replace view user_intervals as select * from lake_dataset('user_intervals');
