"""Encryption at rest with `cryptography`'s MultiFernet.

Keys come from ``FIELD_ENCRYPTION_KEYS`` only (never derived from SECRET_KEY): the first key
encrypts, every key decrypts, and a value no key can decrypt raises — it is never passed off as
plaintext (the popular encrypted-field packages return the ciphertext as the value when decryption
fails, and one derives its key from SECRET_KEY).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes each)"
        ) from exc


def multifernet() -> MultiFernet:
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    return multifernet().encrypt(value.encode()).decode("ascii")


def decrypt_str(token: str) -> str:
    try:
        return multifernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def rotate_str(token: str) -> str:
    """Re-encrypt under the first key (raises DecryptionError when no key fits)."""
    try:
        return multifernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise DecryptionError("stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")
