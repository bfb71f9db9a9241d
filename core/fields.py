"""A text field encrypted at rest with MultiFernet (keys from ``FIELD_ENCRYPTION_KEYS``).

The column holds Fernet ciphertext; reading decrypts, and a value no configured key can decrypt
raises ``core.crypto.DecryptionError`` — it is never handed back as if it were plaintext.
The field supports no lookups except ``isnull``: ciphertext is randomised, so comparing it is
meaningless, and filtering by a secret would be a mistake anyway.
"""

from __future__ import annotations

from django.db import models

from core.crypto import decrypt_str, encrypt_str


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (MultiFernet)"

    def from_db_value(self, value, expression, connection):  # noqa: ARG002 — Django's field API
        if value is None or value == "":
            return value
        return decrypt_str(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_str(str(value))

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, lookup_name):  # noqa: ARG002 — Django's field API
        return None
