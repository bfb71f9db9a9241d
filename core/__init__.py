"""Plumbing shared by every app of ours: COPY upsert, the Celery base task and fan-out, encryption
at rest and its model field, the participant pages' throttle, PostgreSQL session settings.

The bottom layer: imports no app of ours (tests/test_layers.py). An app without models, installed
only so that its ``ready()`` wires the database session settings.
"""
