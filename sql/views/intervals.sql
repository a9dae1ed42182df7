-- intervals: see data_lake/README.md for its columns.
create or replace view intervals as select * from lake_dataset('intervals');
