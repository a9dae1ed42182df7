-- lake_rollup(name): every partition of a roll-up dataset: weekly_trends (week=YYYY-Www) and
-- monthly_trends (month=YYYY-MM). The period is a column inside the files too, so no Hive typing.
-- The lake is mmw_lake() (views/_mmw_lake.sql).
create or replace macro lake_rollup(name) as table
    select *
    from read_parquet(
        mmw_lake() || '/' || name || '/*/*.parquet',
        union_by_name = true
    );
