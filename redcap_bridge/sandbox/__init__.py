"""A fake REDCap API over real HTTP, for tests and benchmarks: the wire format of REDCap's API
(form-encoded POST to ``…/api/``, JSON answers, ``{"error": "…"}`` with REDCap's wording) and the rules
an import must follow (token, known fields, the record id field, events, repeating instruments and
instance numbers, field validation, all-or-nothing). Imports nothing of the portal."""

from .server import RunningFakeRedcap, start_fake_redcap
from .state import FakeProject, FakeRedcap, demo_metadata

__all__ = ["FakeProject", "FakeRedcap", "RunningFakeRedcap", "demo_metadata", "start_fake_redcap"]
