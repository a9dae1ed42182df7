-- lake_root: the lake the views read (the path the catalog file stores, or the session's variable).
select mmw_lake() as lake
