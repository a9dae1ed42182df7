-- run_note: the sentence the detect stage left for the report of $day (how the day was judged).
select note
from detect_runs
where day = $day
