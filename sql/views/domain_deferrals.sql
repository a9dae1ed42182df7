-- domain_deferrals: see data_lake/README.md for its columns.
create or replace view domain_deferrals as select * from lake_dataset('domain_deferrals');
