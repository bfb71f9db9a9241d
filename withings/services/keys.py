"""Key rotation for everything stored with ``core.crypto`` (see the management command)."""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.db import models, transaction

from core.crypto import rotate_str
from measurements.models import StudyExportKey
from withings.models import WithingsApp, WithingsConnection

#: allauth keys encrypted by ``cohorts.adapters.EncryptedMFAAdapter``.
AUTHENTICATOR_SECRET_KEYS = ("secret", "seed")


def _in_batches(model: type[models.Model], batch_size: int, rotate_row: Callable[[models.Model], int]) -> int:
    """Lock ``batch_size`` rows at a time (ordered by pk), rotate each, commit per batch."""
    count, last_pk = 0, 0
    while True:
        with transaction.atomic():
            rows = list(
                model._default_manager.select_for_update().filter(pk__gt=last_pk).order_by("pk")[:batch_size]
            )
            for row in rows:
                count += rotate_row(row)
        if len(rows) < batch_size:
            return count
        last_pk = rows[-1].pk


def _rotate_connection(conn: WithingsConnection) -> int:
    # Loading decrypted with any key; saving encrypts under the first key.
    fields = [f for f in ("access_token", "refresh_token") if getattr(conn, f)]
    if fields:
        conn.save(update_fields=fields)
    return len(fields)


def _rotate_app(app: WithingsApp) -> int:
    if not app.client_secret:
        return 0
    app.save(update_fields=["client_secret"])
    return 1


def _rotate_authenticator(auth: Authenticator) -> int:
    data = dict(auth.data or {})
    keys = [k for k in AUTHENTICATOR_SECRET_KEYS if isinstance(data.get(k), str) and data[k]]
    for key in keys:
        data[key] = rotate_str(data[key])
    if keys:
        auth.data = data
        auth.save(update_fields=["data"])
    return len(keys)


def _rotate_export_key(key: StudyExportKey) -> int:
    key.save(update_fields=["secret"])
    return 1


def rotate_encryption_keys(*, batch_size: int = 200) -> dict[str, int]:
    """Returns how many values were re-encrypted, per kind."""
    return {
        "withings tokens": _in_batches(WithingsConnection, batch_size, _rotate_connection),
        "withings app secrets": _in_batches(WithingsApp, batch_size, _rotate_app),
        "mfa secrets": _in_batches(Authenticator, batch_size, _rotate_authenticator),
        "export de-identification keys": _in_batches(StudyExportKey, batch_size, _rotate_export_key),
    }
