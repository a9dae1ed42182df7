-- line_accounting: see data_lake/README.md for its columns.
create or replace view line_accounting as select * from lake_dataset('line_accounting');
