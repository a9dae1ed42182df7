-- detect_runs: one row per day: the baselines used (history or within-day), the abnormal
-- intervals decomposed by host and sender, and how Dq peaks lined up with N_SMTP peaks.
create or replace view detect_runs as select * from lake_dataset('detect_runs');
