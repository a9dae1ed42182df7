-- lake_dataset(name) while a day is written (mmw_tasks/generations.py): that day from its new
-- generation, every other day from the lake. The read root holds two links, src=lake (the lake)
-- and src=new (the new generation), so one glob sees both even when one has no file yet.
create or replace macro lake_dataset(name) as table
    select * exclude (src)
    from
        read_parquet(
            getvariable('mmw_read_root') || '/*/' || name || '/*/*.parquet',
            hive_partitioning = true,
            hive_types = { 'day': date, 'src': varchar },
            union_by_name = true
        )
    where src = 'new' or day <> getvariable('mmw_new_day');
