"""Synthetic demo data and development commands (`seed_demo`, `demo_totp`, `sandbox_cuff_sync`).

Like ``config``, it may import the Withings sandbox; no app of the product imports it
(tests/test_layers.py).
"""
