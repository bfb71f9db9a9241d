"""An upload between its preview and the coordinator's confirmation.

The preview copies the upload in chunks into the media directory's `import-staging/` (never served),
under an unguessable token, and hands the page a signed reference bound to the user and the
participant; the confirmation opens the file once (it leaves the staging directory), checks its
SHA-256 and imports it. Previews nobody confirmed are removed after `STAGING_MAX_AGE`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied

from cohorts.models import Participant

from .archive import ImportFileError
from .plan import ImportPlan
from .services import withings_csv_import, withings_csv_plan

STAGING_MAX_AGE = 3600
STAGING_SALT = "measurements.import.staged"
EXPIRED = "This preview has expired: upload the file again."


def _staging_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "import-staging"


def _stage(upload) -> tuple[str, str, Path]:
    """Copy the upload to the staging directory in chunks; returns its token, SHA-256 and path."""
    token = secrets.token_urlsafe(24)
    directory = _staging_dir()
    directory.mkdir(parents=True, exist_ok=True)
    expired = time.time() - STAGING_MAX_AGE
    for old in directory.glob("*.upload"):
        if old.stat().st_mtime < expired:
            old.unlink(missing_ok=True)
    path, digest = directory / f"{token}.upload", hashlib.sha256()
    with path.open("wb") as staged:
        for chunk in upload.chunks():
            digest.update(chunk)
            staged.write(chunk)
    return token, digest.hexdigest(), path


def _unstage(signed: str, *, user_id: int, participant_id: int) -> tuple[BinaryIO, dict]:
    """The staged upload, opened (and removed from the staging directory: single use)."""
    try:
        payload = signing.loads(signed, salt=STAGING_SALT, max_age=STAGING_MAX_AGE)
    except signing.BadSignature as exc:
        raise ImportFileError(EXPIRED) from exc
    if payload.get("user") != user_id or payload.get("participant") != participant_id:
        raise PermissionDenied
    path = _staging_dir() / f"{payload['token']}.upload"
    try:
        staged = path.open("rb")
    except OSError as exc:
        raise ImportFileError(EXPIRED) from exc
    path.unlink(missing_ok=True)
    digest = hashlib.sha256()
    while chunk := staged.read(1 << 20):
        digest.update(chunk)
    if digest.hexdigest() != payload["sha256"]:
        staged.close()
        raise ImportFileError("The staged file changed: upload it again.")
    staged.seek(0)
    return staged, payload


def csv_upload_preview(
    *, actor, participant: Participant, upload, timezone: str = ""
) -> tuple[ImportPlan, str]:
    """Stage the upload and plan its import → (plan, signed reference for `csv_upload_confirm`).
    Writes no reading; on ImportFileError nothing stays staged."""
    token, digest, path = _stage(upload)
    try:
        with path.open("rb") as data:
            plan = withings_csv_plan(participant=participant, data=data, timezone=timezone or None)
    except ImportFileError:
        path.unlink(missing_ok=True)
        raise
    signed = signing.dumps(
        {
            "token": token,
            "sha256": digest,
            "user": actor.pk,
            "participant": participant.pk,
            "timezone": timezone,
            "filename": upload.name[:100],
        },
        salt=STAGING_SALT,
    )
    return plan, signed


def csv_upload_confirm(*, actor, participant: Participant, signed: str) -> ImportPlan:
    """Import the upload a preview staged for this user and participant (once): all or nothing."""
    staged, payload = _unstage(signed, user_id=actor.pk, participant_id=participant.pk)
    with staged:
        return withings_csv_import(
            actor=actor,
            participant=participant,
            data=staged,
            timezone=payload["timezone"] or None,
            filename=payload["filename"],
        )
