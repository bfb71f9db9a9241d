"""Which language a request is answered in.

Participant pages (enrollment, consent, Withings linking, the private page, message links) speak
the participant's language: a ``?lang=`` choice (kept in the session), then the session's choice,
then the browser's Accept-Language, then English. A page reached through a participant's token
(``/p/<token>/``, message links) switches to the language stored on the participant. Everything
else — the staff admin, sign-in, the API — stays English.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers

SESSION_KEY = "participant_language"
PARTICIPANT_PREFIXES = ("/enroll/", "/p/", "/withings/", "/messaging/")
STAFF_LANGUAGE = "en"


def supported(code: str | None) -> str | None:
    """``code`` if it names one of the portal's languages (``es-MX`` counts as ``es``), else None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in dict(settings.LANGUAGES) else None


def participant_language_activate(request, code: str) -> None:
    """Answer the rest of this request in ``code`` and keep it for the next pages of the session."""
    code = supported(code) or settings.LANGUAGE_CODE
    translation.activate(code)
    request.LANGUAGE_CODE = code
    if hasattr(request, "session"):
        request.session[SESSION_KEY] = code


class ParticipantLanguageMiddleware:
    """Stands where Django's LocaleMiddleware would (after sessions), for participant pages only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        participant_page = request.path.startswith(PARTICIPANT_PREFIXES)
        if participant_page:
            chosen = supported(request.GET.get("lang"))
            if chosen:
                request.session[SESSION_KEY] = chosen
            code = (
                chosen
                or supported(request.session.get(SESSION_KEY))
                or supported(translation.get_language_from_request(request))
                or settings.LANGUAGE_CODE
            )
        else:
            code = STAFF_LANGUAGE
        translation.activate(code)
        request.LANGUAGE_CODE = code
        response = self.get_response(request)
        if participant_page:
            patch_vary_headers(response, ("Accept-Language", "Cookie"))
            response.headers.setdefault("Content-Language", translation.get_language())
        translation.deactivate()
        return response
