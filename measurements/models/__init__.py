"""Measurement models, one module per subdomain (readings, monitoring, exports)."""

from .exports import ExportJob, StudyExportKey, WithingsCsvImport  # noqa: F401 (registers the models)
from .monitoring import (  # noqa: F401
    Alert,
    AlertNote,
    DailyAdherence,
    MonitoredParticipant,
    StudyProtocol,
    StudyProtocolVersion,
)
from .readings import BloodPressureReading, Device
from .safety import AlertEscalation, SafetyPlan  # noqa: F401

__all__ = ["BloodPressureReading", "Device"]
