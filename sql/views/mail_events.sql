-- mail_events: see data_lake/README.md for its columns.
create or replace view mail_events as select * from lake_dataset('mail_events');
