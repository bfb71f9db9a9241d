"""The fake gateway's memory: one account, the texts it carried (both ways), the numbers that
replied STOP, and the outgoing HTTP it makes like Twilio does — signed status callbacks and signed
inbound webhooks. Standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: Twilio's magic test number that is "invalid" (error 21211).
INVALID_NUMBER = "+15005550001"
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each field name and value, in
    field-name order (Twilio's published algorithm)."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


class GatewayError(Exception):
    """An API error in Twilio's shape: HTTP status and ``{code, message, status}``."""

    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), "status": self.http_status,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}"}  # fmt: skip


@dataclass
class Text:
    sid: str
    direction: str  # "outbound-api", "outbound-reply" or "inbound"
    number: str  # the participant's side: To of outbound, From of inbound
    body: str
    status: str
    created: float


class SmsSandboxState:
    """Args:
    account_sid, auth_token: the credentials the portal must use (basic auth; signing key).
    from_number: the gateway's own number (From of outbound texts, To of inbound ones).
    inbound_url: where replies typed on the sandbox page are posted (the portal's inbound webhook).
    callback_delay: seconds before each status callback ("sent", then "delivered").
    receipts_first: post the status callbacks *before* answering the send request, as Twilio can
        when its answer is slow to reach the portal (the portal must not lose such receipts).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        inbound_url: str = "",
        *,
        callback_delay: float = 0.3,
        timeout: float = 10.0,
        receipts_first: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.inbound_url = inbound_url
        self.callback_delay = callback_delay
        self.receipts_first = receipts_first
        self.timeout = timeout
        self.undeliverable: set[str] = set()  # numbers whose texts end "undelivered" (30003)
        self._lock = threading.RLock()
        self._texts: list[Text] = []
        self._stopped: set[str] = set()
        self.callbacks: list[dict[str, str]] = []  # every status callback posted, with its answer
        self._threads: list[threading.Thread] = []

    # -- reading --------------------------------------------------------------------------------

    def texts(self, number: str | None = None) -> list[Text]:
        with self._lock:
            return [t for t in self._texts if number is None or t.number == number]

    def numbers(self) -> list[str]:
        with self._lock:
            seen: dict[str, None] = {}
            for text in reversed(self._texts):
                seen.setdefault(text.number)
            return list(seen)

    def is_stopped(self, number: str) -> bool:
        with self._lock:
            return number in self._stopped

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for every pending callback (tests)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the Messages API -------------------------------------------------------------------------

    def create_message(self, params: dict[str, str]) -> dict[str, Any]:
        to, body = params.get("To", ""), params.get("Body", "")
        if not E164.match(to) or to == INVALID_NUMBER:
            raise GatewayError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if params.get("From") != self.from_number:
            raise GatewayError(
                400, 21606, "The 'From' phone number provided is not a valid message-capable number."
            )
        if not body:
            raise GatewayError(400, 21602, "Message body is required.")
        with self._lock:
            if to in self._stopped:
                raise GatewayError(400, 21610, "Attempt to send to unsubscribed recipient")
            text = Text(new_sid(), "outbound-api", to, body, "queued", time.time())
            self._texts.append(text)
        callback = params.get("StatusCallback", "")
        if callback and self.receipts_first:
            self._status_callbacks(text, callback)
        elif callback:
            self._later(self._status_callbacks, text, callback)
        return {
            "sid": text.sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": self.from_number,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(1 + len(body) // 160),
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{text.sid}.json",
        }

    def _later(self, target, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="sms-sandbox-callback")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _status_callbacks(self, text: Text, url: str) -> None:
        final = ("undelivered", "30003") if text.number in self.undeliverable else ("delivered", "")
        for status, error_code in (("sent", ""), final):
            time.sleep(self.callback_delay)
            with self._lock:
                text.status = status
            params = {
                "MessageSid": text.sid,
                "SmsSid": text.sid,
                "AccountSid": self.account_sid,
                "From": self.from_number,
                "To": text.number,
                "MessageStatus": status,
                "SmsStatus": status,
            }
            if error_code:
                params["ErrorCode"] = error_code
            answer = self._post_signed(url, params)
            with self._lock:
                self.callbacks.append({**params, "answer": str(answer[0])})

    # -- a reply typed on the sandbox page ----------------------------------------------------------

    def reply(self, number: str, body: str) -> Text:
        """``number`` texts ``body`` to the gateway: Twilio's own STOP/START handling, the signed
        inbound webhook to the portal, and whatever the portal answers in TwiML is "sent" back."""
        if not E164.match(number):
            raise ValueError("The number must be in E.164 form, e.g. +447700900123.")
        word = body.strip().upper()
        inbound = Text(new_sid(), "inbound", number, body, "received", time.time())
        with self._lock:
            self._texts.append(inbound)
            if word in STOP_WORDS:
                self._stopped.add(number)
            elif word in START_WORDS:
                self._stopped.discard(number)
        if not self.inbound_url:
            return inbound
        params = {
            "MessageSid": inbound.sid,
            "SmsSid": inbound.sid,
            "AccountSid": self.account_sid,
            "From": number,
            "To": self.from_number,
            "Body": body,
            "NumMedia": "0",
        }
        status, answer = self._post_signed(self.inbound_url, params)
        if status == 200:
            for reply_body in _twiml_messages(answer):
                with self._lock:
                    self._texts.append(
                        Text(new_sid(), "outbound-reply", number, reply_body, "delivered", time.time())
                    )
        return inbound

    def _post_signed(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(  # noqa: S310 - the portal's own URL, configured
            url,
            data=data,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
                "User-Agent": "TwilioProxy/1.1 (sms sandbox)",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (urllib.error.URLError, OSError):
            return 0, ""


def _twiml_messages(document: str) -> list[str]:
    try:
        root = ET.fromstring(document)  # noqa: S314 - the portal's own answer
    except ET.ParseError:
        return []
    return [(element.text or "") for element in root.iter("Message")]
