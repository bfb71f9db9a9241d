"""Measurement models, one module per subdomain (readings, monitoring, exports)."""

from .readings import BloodPressureReading, Device

__all__ = ["BloodPressureReading", "Device"]
