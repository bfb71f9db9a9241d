"""OAuth 2.0 (authorization codes, rotating refresh tokens) and signed calls (nonce, revoke).

Refresh-token rule (docs/withings-api.md §1): every refresh returns a new pair; the refresh token that
was used stays valid until 8 h after the new one was issued, or until the new access token is
first used on a data call, whichever comes first. Using it again inside that grace window issues
yet another independent pair (each pair then lives its own life). Old access tokens keep working
until their own 3 h expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from . import errors
from ._base import StateBase
from .errors import WithingsError, invalid_params

CODE_TTL = 30.0
ACCESS_TTL = 10_800
REFRESH_TTL = 365 * 86_400
REFRESH_GRACE = 8 * 3_600
KNOWN_SCOPES = ("user.info", "user.metrics", "user.activity", "user.sleepevents")


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class AuthCode:
    code: str
    client_id: str
    userid: str
    redirect_uri: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    userid: str
    scope: str
    issued_at: float
    expires_at: float
    #: the refresh token this pair was obtained with (None for a code exchange).
    predecessor: str | None
    first_used_at: float | None = None
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    userid: str
    scope: str
    issued_at: float
    expires_at: float
    #: set when this token was used to refresh: it dies at this time at the latest.
    grace_until: float | None = None
    #: why it is dead ("used-successor", "revoked"), or None while alive.
    dead: str | None = None


class AuthorizeError(Exception):
    """A problem with an authorize request. ``redirect`` says whether it may be reported to the
    client's ``redirect_uri`` (only once client and redirect_uri are known to be valid)."""

    def __init__(self, message: str, *, redirect: bool = False, code: str = "invalid_request"):
        super().__init__(message)
        self.redirect = redirect
        self.code = code


class OAuthMixin(StateBase):
    _clients: dict[str, Client]
    _codes: dict[str, AuthCode]
    _access: dict[str, AccessToken]
    _refresh: dict[str, RefreshToken]
    _nonces: dict[str, str]

    # -- clients -------------------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        """Register (or replace) an application. ``redirect_uri`` must later match one exactly."""
        with self._lock:
            self._clients[client_id] = Client(client_id, client_secret, list(redirect_uris))

    def client_ids(self) -> list[str]:
        with self._lock:
            return list(self._clients)

    def _check_client(self, client_id: str | None, client_secret: str | None) -> Client:
        client = self._clients.get(client_id or "")
        if client is None:
            raise invalid_params("invalid client_id")
        if client_secret is None or not hmac.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            raise invalid_params("invalid client_secret")
        return client

    # -- authorize -----------------------------------------------------------------------

    def check_authorize(
        self,
        *,
        client_id: str | None,
        redirect_uri: str | None,
        response_type: str | None,
        state: str | None,
        scope: str | None,
    ) -> str:
        """Validate an authorize request; return the normalised (comma-joined) scope."""
        with self._lock:
            client = self._clients.get(client_id or "")
        if client is None:
            raise AuthorizeError("Invalid client_id")
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            raise AuthorizeError("redirect_uri does not match a registered callback URL")
        if response_type != "code":
            raise AuthorizeError(
                "response_type must be 'code'", redirect=True, code="unsupported_response_type"
            )
        if not state:
            raise AuthorizeError("state is required")
        parts = [p.strip() for p in (scope or "").split(",") if p.strip()]
        if not parts or any(p not in KNOWN_SCOPES for p in parts):
            # "user.info user.metrics" (space-joined, oauthlib's default) lands here.
            raise AuthorizeError(f"invalid scope {scope!r}", redirect=True, code="invalid_scope")
        return ",".join(dict.fromkeys(parts))

    def approve(
        self, *, client_id: str, redirect_uri: str, scope: str, userid: str | None = None
    ) -> tuple[str, str]:
        """The user clicked Allow: return ``(userid, code)``; creates a user unless given one."""
        with self._lock:
            if userid is None:
                userid = self.create_user()  # type: ignore[attr-defined]
            user = self._user(userid)
            code = secrets.token_hex(20)
            self._codes[code] = AuthCode(
                code, client_id, user.userid, redirect_uri, scope, self.now() + CODE_TTL
            )
            self._bump("codes_issued")
            return user.userid, code

    # -- tokens --------------------------------------------------------------------------

    def _issue_pair(self, client_id: str, userid: str, scope: str, predecessor: str | None) -> dict[str, Any]:
        now = self.now()
        access = secrets.token_hex(20)
        refresh = secrets.token_hex(20)
        self._access[access] = AccessToken(
            access, client_id, userid, scope, now, now + ACCESS_TTL, predecessor
        )
        self._refresh[refresh] = RefreshToken(refresh, client_id, userid, scope, now, now + REFRESH_TTL)
        self._user(userid).revoked_by.discard(client_id)
        return {
            "userid": int(userid) if userid.isdigit() else userid,
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_TTL,
            "scope": scope,
            "csrf_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
        }

    def requesttoken(self, params: dict[str, str]) -> dict[str, Any]:
        """``POST /v2/oauth2 action=requesttoken`` for both grant types."""
        grant = params.get("grant_type")
        with self._lock:
            client = self._check_client(params.get("client_id"), params.get("client_secret"))
            if grant == "authorization_code":
                return self._exchange_code(client, params)
            if grant == "refresh_token":
                return self._refresh_grant(client, params)
            raise invalid_params("invalid grant_type")

    def _exchange_code(self, client: Client, params: dict[str, str]) -> dict[str, Any]:
        code = self._codes.get(params.get("code") or "")
        if code is None or code.used or code.client_id != client.client_id:
            raise invalid_params("invalid code")
        if self.now() > code.expires_at:
            code.used = True
            raise invalid_params("invalid code")
        if params.get("redirect_uri") != code.redirect_uri:
            raise invalid_params("invalid redirect_uri")
        code.used = True
        self._bump("codes_exchanged")
        return self._issue_pair(client.client_id, code.userid, code.scope, None)

    def _refresh_alive(self, token: RefreshToken) -> bool:
        now = self.now()
        if token.dead is not None or now >= token.expires_at:
            return False
        return token.grace_until is None or now < token.grace_until

    def _refresh_grant(self, client: Client, params: dict[str, str]) -> dict[str, Any]:
        token = self._refresh.get(params.get("refresh_token") or "")
        if token is None or token.client_id != client.client_id or not self._refresh_alive(token):
            self._bump("refresh_rejected")
            raise invalid_params("invalid refresh_token")
        grace_end = self.now() + REFRESH_GRACE
        token.grace_until = grace_end if token.grace_until is None else token.grace_until
        self._bump("refreshes")
        return self._issue_pair(client.client_id, token.userid, token.scope, token.token)

    def issue_tokens_for_test(
        self, userid: str, client_id: str, scope: str = "user.info,user.metrics"
    ) -> dict[str, Any]:
        """A fresh token body as a code exchange would return it, without the browser flow."""
        with self._lock:
            if client_id not in self._clients:
                raise KeyError(f"unknown client {client_id!r}")
            return self._issue_pair(client_id, self._user(userid).userid, scope, None)

    def authenticate(self, bearer: str | None) -> AccessToken:
        """Resolve a data call's Bearer token (status 401 if unknown, revoked or expired).

        The first successful use kills the refresh token this pair was obtained with.
        """
        with self._lock:
            token = self._access.get(bearer or "")
            if token is None or token.revoked or self.now() >= token.expires_at:
                raise WithingsError(errors.INVALID_TOKEN, errors.INVALID_TOKEN_TEXT)
            if token.first_used_at is None:
                token.first_used_at = self.now()
                old = self._refresh.get(token.predecessor or "")
                if old is not None and old.dead is None:
                    old.dead = "used-successor"
            return token

    def client_of_token(self, bearer: str | None) -> str | None:
        with self._lock:
            token = self._access.get(bearer or "")
            return token.client_id if token else None

    def valid_refresh_tokens(self, userid: str, client_id: str | None = None) -> list[str]:
        """Refresh tokens of this user that a refresh would accept right now."""
        with self._lock:
            return [
                t.token
                for t in self._refresh.values()
                if t.userid == str(userid)
                and (client_id is None or t.client_id == client_id)
                and self._refresh_alive(t)
            ]

    def valid_access_tokens(self, userid: str) -> list[str]:
        with self._lock:
            now = self.now()
            return [
                t.token
                for t in self._access.values()
                if t.userid == str(userid) and not t.revoked and now < t.expires_at
            ]

    # -- signed calls --------------------------------------------------------------------

    @staticmethod
    def sign(secret: str, *parts: str) -> str:
        """Hex HMAC-SHA256 of the comma-joined parts, keyed with the client secret."""
        return hmac.new(secret.encode(), ",".join(parts).encode(), hashlib.sha256).hexdigest()

    def getnonce(self, params: dict[str, str]) -> dict[str, Any]:
        """``POST /v2/signature action=getnonce`` (signature over "getnonce,client_id,timestamp")."""
        with self._lock:
            client = self._clients.get(params.get("client_id") or "")
            if client is None:
                raise invalid_params("invalid client_id")
            timestamp = params.get("timestamp") or ""
            if not timestamp.isdigit():
                raise invalid_params("invalid timestamp")
            expected = self.sign(client.client_secret, "getnonce", client.client_id, timestamp)
            if not hmac.compare_digest(expected, (params.get("signature") or "").lower()):
                raise WithingsError(errors.INVALID_SIGNATURE, "Invalid signature")
            nonce = secrets.token_hex(20)
            self._nonces[nonce] = client.client_id
            return {"nonce": nonce}

    def signed_revoke(self, params: dict[str, str]) -> dict[str, Any]:
        """``POST /v2/oauth2 action=revoke`` (signed; the nonce is consumed on any attempt)."""
        with self._lock:
            client = self._clients.get(params.get("client_id") or "")
            if client is None:
                raise invalid_params("invalid client_id")
            nonce = params.get("nonce") or ""
            if self._nonces.pop(nonce, None) != client.client_id:
                raise invalid_params("invalid nonce")
            expected = self.sign(client.client_secret, "revoke", client.client_id, nonce)
            if not hmac.compare_digest(expected, (params.get("signature") or "").lower()):
                raise WithingsError(errors.INVALID_SIGNATURE, "Invalid signature")
            userid = params.get("userid") or ""
            if userid not in self._users:
                raise WithingsError(247, "The userid provided is absent, or incorrect")
            self.revoke_user(userid, client.client_id)
            return {}

    def revoke_user(self, userid: str, client_id: str) -> None:
        """Kill every token of this user for this app and drop its notification subscriptions."""
        with self._lock:
            user = self._user(userid)
            for a in self._access.values():
                if a.userid == user.userid and a.client_id == client_id:
                    a.revoked = True
            for r in self._refresh.values():
                if r.userid == user.userid and r.client_id == client_id and r.dead is None:
                    r.dead = "revoked"
            self._drop_subscriptions(user.userid, client_id)  # type: ignore[attr-defined]
            user.revoked_by.add(client_id)
            self._bump("revocations")

    def is_revoked(self, userid: str, client_id: str | None = None) -> bool:
        """True if the user revoked the grant (of ``client_id``, or of any app) and has not
        authorized again since."""
        with self._lock:
            user = self._user(userid)
            return bool(user.revoked_by) if client_id is None else client_id in user.revoked_by
