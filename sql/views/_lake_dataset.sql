-- lake_dataset(name): every day's Parquet parts of one lake dataset, `day` taken from the Hive path.
-- The lake is mmw_lake() (views/_mmw_lake.sql).
create or replace macro lake_dataset(name) as table
    select *
    from read_parquet(
        mmw_lake() || '/' || name || '/*/*.parquet',
        hive_partitioning = true,
        hive_types = { 'day': date },
        union_by_name = true
    );
