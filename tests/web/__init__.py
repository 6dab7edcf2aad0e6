"""Tests of the browser pages (`run --web`, `annotate`, `frames`)."""
