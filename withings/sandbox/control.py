"""The JSON control API under ``/_sandbox/`` — how tests, workers, soak scripts and the demo drive
a sandbox running in another process. Not part of Withings' API; never expose it publicly.

Requests and answers are JSON (``{"error": "..."}`` with HTTP 400/404 on problems).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import SandboxState

Handler = Callable[["SandboxState", dict[str, Any], "re.Match[str]"], Any]
CONFIG_KEYS = (
    "page_size",
    "auto_approve",
    "more_as_bool",
    "order",
    "shuffle_seed",
    "hide_unsynced",
    "rate_limit_per_minute",
    "identical_call_window",
    "head_timeout",
    "delivery_timeout",
)
FAULT_KEYS = ("endpoint", "probability", "count", "wait_seconds", "delay", "http_status")
GENERATE_KEYS = (
    "profile",
    "missed_day_rate",
    "missed_session_rate",
    "manual_rate",
    "ambiguous_rate",
    "crisis_rate",
    "late_sync_rate",
    "upload_delay_hours",
)


class ControlError(Exception):
    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.http_status = http_status


def _pick(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: body[k] for k in keys if k in body}


def _health(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"ok": True, "now": state.now(), "users": len(state.users())}


def _register_client(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    state.register_client(body["client_id"], body["client_secret"], body["redirect_uris"])
    return {"client_id": body["client_id"]}


def _create_user(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    kwargs = _pick(body, ("timezone", "device", "with_device"))
    userid = state.create_user(body.get("userid"), **kwargs)
    return state.user_info(userid)


def _list_users(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"users": state.users()}


def _user(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.user_info(m["uid"])


def _groups(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"measuregrps": state.groups(m["uid"])}


def _add_groups(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    groups = state.add_groups(m["uid"], body["groups"], renumber_conflicts=True)
    return {"measuregrps": groups}


def _modify_group(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.modify_group(m["uid"], int(m["grpid"]), **body)


def _delete_group(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    state.delete_group(m["uid"], int(m["grpid"]))
    return {"deleted": int(m["grpid"])}


def _generate(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    groups = state.generate_readings(
        m["uid"],
        start=float(body.get("start", state.now() - int(body.get("days", 14)) * 86_400)),
        days=int(body.get("days", 14)),
        seed=int(body.get("seed", 0)),
        **_pick(body, GENERATE_KEYS),
    )
    return {"count": len(groups), "measuregrps": groups}


def _sync(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    deliveries = state.cuff_sync(
        m["uid"],
        body.get("groups"),
        deliver=bool(body.get("deliver", True)),
        wait=bool(body.get("wait", True)),
    )
    return {"deliveries": deliveries}


def _tokens(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    kwargs = _pick(body, ("scope",))
    return state.issue_tokens_for_test(m["uid"], body["client_id"], **kwargs)


def _device(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.set_device(m["uid"], **body)


def _add_device(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"devices": state.add_device(m["uid"], body["device"])}


def _user_subs(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"subscriptions": state.subscriptions(m["uid"])}


def _revoke(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    state.revoke_user(m["uid"], body["client_id"])
    return {"revoked": True}


def _revoked(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"revoked": state.is_revoked(m["uid"], body.get("client_id"))}


def _refresh_tokens(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"valid_refresh_tokens": state.valid_refresh_tokens(m["uid"])}


def _set_fault(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.set_fault(body["kind"], **_pick(body, FAULT_KEYS))


def _faults(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"faults": state.faults()}


def _clear_faults(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    state.clear_faults()
    return {"faults": []}


def _config(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    for key, value in _pick(body, CONFIG_KEYS).items():
        setattr(state, key, value)
    return state.snapshot()["config"]


def _clock(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"now": state.advance_clock(float(body.get("advance", 0)))}


def _stats(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.stats


def _snapshot(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return state.snapshot()


def _subscriptions(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"subscriptions": state.subscriptions()}


def _deliveries(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"deliveries": state.deliveries()}


def _retry(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    return {"deliveries": state.retry_failed_deliveries(wait=True)}


def _reset(state: SandboxState, body: dict[str, Any], m: re.Match[str]) -> Any:
    state.reset(keep_clients=bool(body.get("keep_clients", True)))
    return {"reset": True}


_U = r"/users/(?P<uid>[^/]+)"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"/?", _health),
    ("GET", r"/health", _health),
    ("POST", r"/clients", _register_client),
    ("GET", r"/users", _list_users),
    ("POST", r"/users", _create_user),
    ("GET", _U, _user),
    ("GET", _U + r"/groups", _groups),
    ("POST", _U + r"/groups", _add_groups),
    ("POST", _U + r"/groups/(?P<grpid>\d+)", _modify_group),
    ("DELETE", _U + r"/groups/(?P<grpid>\d+)", _delete_group),
    ("POST", _U + r"/generate", _generate),
    ("POST", _U + r"/sync", _sync),
    ("POST", _U + r"/tokens", _tokens),
    ("POST", _U + r"/device", _device),
    ("POST", _U + r"/devices", _add_device),
    ("GET", _U + r"/subscriptions", _user_subs),
    ("POST", _U + r"/revoke", _revoke),
    ("GET", _U + r"/revoked", _revoked),
    ("GET", _U + r"/refresh_tokens", _refresh_tokens),
    ("GET", r"/faults", _faults),
    ("POST", r"/faults", _set_fault),
    ("DELETE", r"/faults", _clear_faults),
    ("POST", r"/config", _config),
    ("POST", r"/clock", _clock),
    ("GET", r"/stats", _stats),
    ("GET", r"/snapshot", _snapshot),
    ("GET", r"/subscriptions", _subscriptions),
    ("GET", r"/deliveries", _deliveries),
    ("POST", r"/deliveries/retry", _retry),
    ("POST", r"/reset", _reset),
]
_COMPILED = [(method, re.compile(pattern), fn) for method, pattern, fn in ROUTES]


def handle(state: SandboxState, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Dispatch ``path`` (relative to ``/_sandbox``); returns ``(http_status, json_obj)``."""
    allowed = False
    for route_method, pattern, fn in _COMPILED:
        m = pattern.fullmatch(path)
        if m is None:
            continue
        allowed = True
        if route_method != method:
            continue
        try:
            return 200, fn(state, body, m)
        except ControlError as exc:
            return exc.http_status, {"error": str(exc)}
        except KeyError as exc:
            return 404 if "unknown" in str(exc) else 400, {"error": f"missing or unknown: {exc}"}
        except (TypeError, ValueError) as exc:
            return 400, {"error": str(exc)}
    if allowed:
        return 405, {"error": f"{method} not allowed on {path}"}
    return 404, {"error": f"no control route {path}"}
