"""Blood-pressure readings in: getmeas groups parsed (`parse`) or turned straight into COPY lines
(`copy_lines`), stored by (participant, grpid) with the monitoring refreshed (`store`, `upsert`,
`changes`), the cuffs of getdevice (`devices`), the withdrawal purge, the status page's summary.

What other apps call: `readings_store_api_page` (one getmeas page) and `devices_upsert` (one
getdevice answer).
"""

from .devices import devices_upsert
from .store import PageStored, readings_store_api_page
from .upsert import UpsertResult

__all__ = ["PageStored", "UpsertResult", "devices_upsert", "readings_store_api_page"]
