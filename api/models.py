"""Personal access tokens for the analysts' API (`/api/v1/`).

A token acts for its user with the user's study roles *at the time of each call* (a revoked role
revokes the token's reach at once); it may be narrowed to de-identified data, never widened. Only a
SHA-256 of the token is stored (tokens are 256-bit random, so a fast hash is enough, as for GitHub's
tokens); the token itself is shown once, when it is created.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


class AccessToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text=_("What it is for, e.g. 'nightly R pull'."))
    prefix = models.CharField(max_length=16, editable=False, help_text=_("The token's first characters."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    deidentified_only = models.BooleanField(
        default=False,
        help_text=_("Give de-identified data only, even where your role allows full data."),
    )
    created_at = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API access token")
        verbose_name_plural = _("API access tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > now()
