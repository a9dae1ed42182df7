-- address_book: see data_lake/README.md for its columns.
create or replace view address_book as select * from lake_dataset('address_book');
