"""The Withings sandbox: a fake Withings server that speaks the real wire format.

Standard library only, and nothing of the portal is imported here (the portal imports this
package only where it wires the sandbox in). See ``state.SandboxState``, ``app.SandboxApp``,
``server.start_sandbox`` and ``generator.generate_groups``.
"""

from .app import SandboxApp
from .clock import FakeClock
from .generator import bp_group
from .server import RunningSandbox, mount, start_sandbox
from .state import SandboxState

__all__ = [
    "FakeClock",
    "RunningSandbox",
    "SandboxApp",
    "SandboxState",
    "bp_group",
    "mount",
    "start_sandbox",
]
