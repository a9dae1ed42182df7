-- mmw_lake(): the lake's root directory, which every view reads through (views/_lake_dataset.sql,
-- views/_lake_rollup.sql). A session takes it from a variable: SET VARIABLE mmw_lake = '/path/to/data_lake';
-- the catalog file <lake>/mmw.duckdb stores the path itself instead (a variable is not stored in a database).
create or replace macro mmw_lake() as getvariable('mmw_lake');
