"""Tokens encrypted at rest: no plaintext in the column, a wrong key raises, rotation works."""

from __future__ import annotations

import io

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection as db

from core.crypto import DecryptionError, decrypt_str, generate_key
from tests.factories import TOTP_SECRET, UserFactory, WithingsAppFactory, WithingsConnectionFactory
from withings.models import WithingsApp, WithingsConnection

pytestmark = pytest.mark.django_db


def raw(table: str, column: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_columns_hold_ciphertext_only():
    conn = WithingsConnectionFactory(access_token="plain-access-1234", refresh_token="plain-refresh-5678")
    stored_access = raw("withings_withingsconnection", "access_token", conn.pk)
    stored_refresh = raw("withings_withingsconnection", "refresh_token", conn.pk)
    assert "plain-access-1234" not in stored_access
    assert "plain-refresh-5678" not in stored_refresh
    assert decrypt_str(stored_access) == "plain-access-1234"
    loaded = WithingsConnection.objects.get(pk=conn.pk)
    assert (loaded.access_token, loaded.refresh_token) == ("plain-access-1234", "plain-refresh-5678")


def test_wrong_key_raises_instead_of_returning_ciphertext(settings):
    conn = WithingsConnectionFactory(access_token="plain-access")
    settings.FIELD_ENCRYPTION_KEYS = [generate_key()]
    with pytest.raises(DecryptionError):
        WithingsConnection.objects.get(pk=conn.pk)


def test_encrypted_fields_cannot_be_used_for_lookups():
    WithingsConnectionFactory(access_token="plain-access")
    with pytest.raises(FieldError):
        WithingsConnection.objects.filter(access_token="plain-access").exists()
    assert WithingsConnection.objects.filter(access_token__isnull=False).count() == 1


def test_rotate_encryption_keys(settings):
    key1, key2 = settings.FIELD_ENCRYPTION_KEYS[0], generate_key()
    conns = [
        WithingsConnectionFactory(access_token=f"access-{i}", refresh_token=f"refresh-{i}") for i in range(3)
    ]
    app = WithingsAppFactory(client_secret="institution-secret")
    user = UserFactory()  # TOTP activated through the encrypting MFA adapter
    RecoveryCodes.activate(user)
    totp = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    codes = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    seed = decrypt_str(codes.data["seed"])
    before = raw("withings_withingsconnection", "access_token", conns[0].pk)

    settings.FIELD_ENCRYPTION_KEYS = [key2, key1]
    assert WithingsConnection.objects.get(pk=conns[0].pk).access_token == "access-0"  # key 1 still read

    out = io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "2", stdout=out)
    assert out.getvalue().splitlines() == [
        "withings tokens: 6 re-encrypted",
        "withings app secrets: 1 re-encrypted",
        "mfa secrets: 2 re-encrypted",
        "export de-identification keys: 0 re-encrypted",
        "total: 9",
    ]
    assert raw("withings_withingsconnection", "access_token", conns[0].pk) != before

    settings.FIELD_ENCRYPTION_KEYS = [key2]
    for i, conn in enumerate(conns):
        loaded = WithingsConnection.objects.get(pk=conn.pk)
        assert (loaded.access_token, loaded.refresh_token) == (f"access-{i}", f"refresh-{i}")
    assert WithingsApp.objects.get(pk=app.pk).client_secret == "institution-secret"
    totp.refresh_from_db()
    codes.refresh_from_db()
    assert decrypt_str(totp.data["secret"]) == TOTP_SECRET
    assert decrypt_str(codes.data["seed"]) == seed

    settings.FIELD_ENCRYPTION_KEYS = [key1]
    with pytest.raises(DecryptionError):
        WithingsConnection.objects.get(pk=conns[0].pk)
