-- view_names: the views a connection or the catalog file has (the lake's, not DuckDB's own).
select view_name
from duckdb_views()
where not internal
