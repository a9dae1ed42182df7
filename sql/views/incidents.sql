-- incidents: see data_lake/README.md for its columns.
create or replace view incidents as select * from lake_dataset('incidents');
