-- host_days: see data_lake/README.md for its columns.
create or replace view host_days as select * from lake_dataset('host_days');
