-- lake_dataset(name): every day's Parquet parts of one lake dataset, `day` taken from the Hive path.
-- Set the lake first: SET VARIABLE mmw_lake = '/path/to/data_lake';
create or replace macro lake_dataset(name) as table
select *
from read_parquet(
    getvariable('mmw_lake') || '/' || name || '/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'day': date},
    union_by_name = true
);
