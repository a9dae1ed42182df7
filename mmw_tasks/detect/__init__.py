"""Detect: a day's incidents from the lake's aggregates: baselines, host verdicts, outbreak-wide signals."""
