"""Writes of the withings app: linking (``link``), token refresh (``tokens``) and authenticated
data calls with refresh-once-on-401 (``api``)."""
