"""Parse: log files read in batches, framed, dated and parsed into the lake, every line accounted for."""
