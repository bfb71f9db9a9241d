"""Notification subscriptions (``/notify``) and deliveries to the portal after a cuff sync.

Outgoing HTTP (the HEAD check on subscribe, the delivery POSTs) never runs under the state lock.
"""

from __future__ import annotations

import copy
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from . import errors
from ._base import StateBase
from .errors import WithingsError, invalid_params

#: applis Withings documents (4 = blood pressure / heart rate / SpO2, 46 = user events …).
KNOWN_APPLIS = frozenset({1, 2, 4, 16, 44, 46, 50, 51, 52, 53, 54, 55, 58})
BP_APPLI = 4
NEVER_EXPIRES = 2_147_483_647


@dataclass
class Subscription:
    userid: str
    client_id: str
    callbackurl: str
    appli: int
    comment: str
    created: float

    def profile(self) -> dict[str, Any]:
        """The shape of one ``notify list`` profile."""
        return {
            "appli": self.appli,
            "callbackurl": self.callbackurl,
            "expires": NEVER_EXPIRES,
            "comment": self.comment,
        }


def _http_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_restricted_callback(url: str) -> bool:
    """Withings keeps an app in "restricted mode" (≤ 10 users) unless its callback is https,
    a domain name, port 443, ≤ 255 characters. Reported, not enforced."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    is_ip = host.replace(".", "").isdigit() or ":" in host or host == "localhost"
    return parts.scheme != "https" or is_ip or parts.port not in (None, 443) or len(url) > 255


class NotifyMixin(StateBase):
    head_timeout: float
    delivery_timeout: float
    _subs: list[Subscription]
    _deliveries: list[dict[str, Any]]

    # -- outgoing HTTP -------------------------------------------------------------------

    def _head_ok(self, url: str) -> bool:
        if not _http_url(url):
            return False
        request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - http(s) checked
        try:
            with urllib.request.urlopen(request, timeout=self.head_timeout) as response:  # noqa: S310
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _post_form(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        data = urllib.parse.urlencode(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) checked on subscribe
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        started = time.monotonic()
        result: dict[str, Any] = {"url": url, "payload": payload, "at": self.now()}
        try:
            with urllib.request.urlopen(request, timeout=self.delivery_timeout) as response:  # noqa: S310
                result["status_code"] = response.status
        except urllib.error.HTTPError as exc:
            result["status_code"] = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            result["status_code"] = None
            result["error"] = str(getattr(exc, "reason", exc))
        result["duration"] = round(time.monotonic() - started, 4)
        result["ok"] = result["status_code"] is not None and 200 <= result["status_code"] < 300
        return result

    # -- the /notify service -------------------------------------------------------------

    def _find_subs(
        self, userid: str, client_id: str, callbackurl: str | None, appli: int | None
    ) -> list[Subscription]:
        return [
            s
            for s in self._subs
            if s.userid == userid
            and s.client_id == client_id
            and (callbackurl is None or s.callbackurl == callbackurl)
            and (appli is None or s.appli == appli)
        ]

    @staticmethod
    def _appli(params: dict[str, str], required: bool = True) -> int | None:
        raw = params.get("appli")
        if raw in (None, ""):
            if required:
                raise invalid_params("appli is required")
            return None
        try:
            appli = int(raw)
        except ValueError:
            raise invalid_params("invalid appli") from None
        if appli not in KNOWN_APPLIS:
            raise invalid_params("invalid appli")
        return appli

    def notify(self, userid: str, client_id: str, params: dict[str, str]) -> dict[str, Any]:
        """``POST /notify`` — subscribe / get / list / revoke / update for the token's user."""
        action = params.get("action")
        url = params.get("callbackurl") or None
        if action == "subscribe" or action == "update":
            target = params.get("new_callbackurl") or url if action == "update" else url
            appli = self._appli(params)
            new_appli = self._appli({"appli": params.get("new_appli") or str(appli)})
            if not target or not self._check_callback(target):
                raise WithingsError(
                    errors.CALLBACK_REJECTED, "The callback URL is either absent or incorrect"
                )
            with self._lock:
                if action == "update":
                    old = self._find_subs(userid, client_id, url, appli)
                    if not old:
                        raise WithingsError(errors.NO_SUCH_SUBSCRIPTION, "No such subscription")
                    for s in old:
                        self._subs.remove(s)
                for s in self._find_subs(userid, client_id, target, new_appli):
                    self._subs.remove(s)
                comment = params.get("comment") or ""
                assert new_appli is not None
                self._subs.append(Subscription(userid, client_id, target, new_appli, comment, self.now()))
            return {}
        with self._lock:
            if action == "list":
                subs = self._find_subs(userid, client_id, None, self._appli(params, False))
                return {"profiles": [s.profile() for s in subs]}
            if action == "get":
                found = self._find_subs(userid, client_id, url or "", self._appli(params))
                if not found:
                    raise WithingsError(errors.NO_SUCH_SUBSCRIPTION, "No such subscription")
                p = found[0].profile()
                return {
                    "callbackurl": p["callbackurl"],
                    "comment": p["comment"],
                    "expires": p["expires"],
                    "appli": p["appli"],
                }
            if action == "revoke":
                found = self._find_subs(userid, client_id, url or "", self._appli(params))
                if not found:
                    raise WithingsError(errors.NOTHING_TO_REVOKE, "No such subscription could be deleted")
                for s in found:
                    self._subs.remove(s)
                return {}
        raise WithingsError(errors.NOT_IMPLEMENTED, "Wrong action or wrong webservice")

    def _check_callback(self, url: str) -> bool:
        with self._lock:
            self._bump("head_checks")
        ok = self._head_ok(url)
        if not ok:
            with self._lock:
                self._bump("head_checks_failed")
        return ok

    def _drop_subscriptions(self, userid: str, client_id: str) -> None:
        self._subs[:] = [s for s in self._subs if not (s.userid == userid and s.client_id == client_id)]

    def subscriptions(self, userid: str | None = None) -> list[dict[str, Any]]:
        """All subscriptions (of one user, if given), with owner app and restricted-mode flag."""
        with self._lock:
            return [
                {**asdict(s), "restricted": is_restricted_callback(s.callbackurl)}
                for s in self._subs
                if userid is None or s.userid == str(userid)
            ]

    # -- deliveries ----------------------------------------------------------------------

    def cuff_sync(
        self,
        userid: str,
        groups: list[dict[str, Any]] | None = None,
        *,
        deliver: bool = True,
        wait: bool = False,
    ) -> list[dict[str, Any]]:
        """ "The cuff synced": store ``groups`` with ``created = modified = now`` — or, without
        groups, make every pending reading (generated with a future ``created``, measured by now)
        visible — set the device's ``last_session_date``, and notify every appli-4 subscription
        of the user with ``userid, appli=4, startdate, enddate`` (min/max ``date`` of the synced
        groups, enddate + 1; both = now if nothing synced).

        Deliveries run in a background thread unless ``wait``; returns the delivery records
        when ``wait``, else ``[]`` (see ``deliveries()``).
        """
        with self._lock:
            user = self._user(userid)
            now = int(self.now())
            if groups is not None:
                synced = self.add_groups(  # type: ignore[attr-defined]
                    user.userid,
                    [{**g, "created": now, "modified": now} for g in groups],
                )
            else:
                synced = []
                for g in user.groups.values():
                    if g["created"] > now and g["date"] <= now:
                        g["created"] = g["modified"] = now
                        synced.append(g)
            if user.device is not None:
                user.device["last_session_date"] = now
                if user.device.get("first_session_date") is None:
                    user.device["first_session_date"] = now
            dates = [g["date"] for g in synced]
            window = (min(dates), max(dates) + 1) if dates else (now, now)
            self._bump("cuff_syncs")
            if not deliver:
                return []
            payload = {"userid": user.userid, "appli": BP_APPLI, "startdate": window[0], "enddate": window[1]}
            targets = [s.callbackurl for s in self._subs if s.userid == user.userid and s.appli == BP_APPLI]
        return self._deliver_all(targets, payload, wait)

    def notify_event(
        self, userid: str, appli: int, extra: dict[str, Any] | None = None, *, wait: bool = False
    ) -> list[dict[str, Any]]:
        """Send any notification (e.g. appli 46 ``action=unlink``) to the user's subscribers."""
        with self._lock:
            user = self._user(userid)
            payload = {"userid": user.userid, "appli": appli, **(extra or {})}
            targets = [s.callbackurl for s in self._subs if s.userid == user.userid and s.appli == appli]
        return self._deliver_all(targets, payload, wait)

    def _deliver_all(self, targets: list[str], payload: dict[str, Any], wait: bool) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            results = []
            for url in targets:
                result = self._post_form(url, payload)
                with self._lock:
                    self._deliveries.append(result)
                    del self._deliveries[:-1000]
                    self._bump("deliveries")
                    if not result["ok"]:
                        self._bump("deliveries_failed")
                results.append(result)
            return results

        if wait:
            return copy.deepcopy(run())
        threading.Thread(target=run, name="sandbox-delivery", daemon=True).start()
        return []

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far (last 1000): url, payload, status_code, ok, error…"""
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def retry_failed_deliveries(self, *, wait: bool = True) -> list[dict[str, Any]]:
        """Re-send failed deliveries once, as Withings' retry would (newest attempt per payload)."""
        with self._lock:
            latest: dict[tuple[str, str], dict[str, Any]] = {}
            for d in self._deliveries:
                latest[(d["url"], repr(sorted(d["payload"].items())))] = d
            failed = [d for d in latest.values() if not d["ok"]]
        results = []
        for d in failed:
            results += self._deliver_all([d["url"]], d["payload"], wait)
        return results
