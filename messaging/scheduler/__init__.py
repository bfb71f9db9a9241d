"""Reminder rules as of an instant: who is due which message, decided in set-based SQL (PostgreSQL)
or, on SQLite (the zero-setup demo) and as the benchmark's baseline, one participant at a time."""
