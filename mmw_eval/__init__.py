"""The labelled benchmark (`make eval`): the simulator's sites run through the whole daily job,
every incident matched against the simulator's ground truth, one table of precision, recall,
false alarms per clean day and time to the first flag. See docs/detection.md."""
