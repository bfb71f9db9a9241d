"""Measurement models, one module per subdomain (readings, monitoring, exports)."""

from .exports import ExportJob, WithingsCsvImport  # noqa: F401 (registers the models)
from .monitoring import Alert, AlertNote, DailyAdherence, MonitoredParticipant, StudyProtocol  # noqa: F401
from .readings import BloodPressureReading, Device

__all__ = ["BloodPressureReading", "Device"]
