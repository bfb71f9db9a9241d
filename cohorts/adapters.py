"""allauth adapters: no public sign-up; TOTP secrets encrypted with FIELD_ENCRYPTION_KEYS."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter

from core.crypto import decrypt_str, encrypt_str
from core.throttle import client_ip


class StaffAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:  # noqa: ARG002 — allauth's hook signature
        # Staff accounts are created by operators and study coordinators, never by sign-up.
        return False

    def get_client_ip(self, request) -> str:
        """The address allauth's rate limits key on: the same as the participant pages' limits
        (PORTAL_TRUSTED_PROXY_COUNT), so behind the proxy one client cannot lock out all staff."""
        return client_ip(request)


class EncryptedMFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return encrypt_str(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt_str(encrypted_text)
