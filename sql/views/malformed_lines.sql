-- malformed_lines: see data_lake/README.md for its columns.
create or replace view malformed_lines as select * from lake_dataset('malformed_lines');
