"""Measurement models, one module per subdomain (readings, monitoring, exports)."""

from .exports import ExportJob, WithingsCsvImport  # noqa: F401 (registers the models)
from .readings import BloodPressureReading, Device

__all__ = ["BloodPressureReading", "Device"]
