-- model_fits: see data_lake/README.md for its columns.
create or replace view model_fits as select * from lake_dataset('model_fits');
