"""The fswatchd benchmark harness (run it through bench/run.py)."""
