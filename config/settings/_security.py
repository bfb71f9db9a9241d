"""HTTP security: cookies, headers, the Content-Security-Policy and the client address of rate limits."""

import base64
import hashlib
import re
from pathlib import Path

import django
from csp import constants as csp

from ._env import env
from ._withings import WITHINGS_AUTH_URL

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# How many proxies in front of the portal set X-Forwarded-For (0: none): the client address every
# rate limit keys on, participant pages (core.throttle) and staff sign-in (allauth) alike.
PORTAL_TRUSTED_PROXY_COUNT = env.int("PORTAL_TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = PORTAL_TRUSTED_PROXY_COUNT


def _django_admin_inline_styles() -> list[str]:
    """CSP hashes of the one inline <style> Django's admin emits (change_list.html, a column width
    for changelists without actions), read from the installed Django so an upgrade stays covered."""
    template = Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html"
    blocks = re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks]


# Content-Security-Policy (django-csp, its middleware right after SecurityMiddleware): no inline script
# or style anywhere. Participant pages use static/portal/participant.css and no JavaScript; the admin
# and allauth use their own static files. `style-src` allows a per-response nonce for the rare admin
# <style> block that asks for one ({{ request.csp_nonce }}); the nonce is only added to the header
# when a template used it. `img-src data:` is for allauth's TOTP QR code. form-action also allows the
# Withings authorize origin: re-linking is a POST that redirects there, and browsers apply
# form-action to redirects.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, csp.NONCE, *_django_admin_inline_styles()],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "frame-ancestors": [csp.NONE],
        "form-action": [csp.SELF, "/".join(WITHINGS_AUTH_URL.split("/")[:3])],
    },
}
