"""Upload form of the Withings CSV import page."""

from __future__ import annotations

import zoneinfo

from django import forms

from .archive import MAX_ARCHIVE_BYTES, ImportFileError


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Withings export",
        help_text="The participant's 'Download my data' archive (.zip, up to 50 MB) "
        "or its bp.csv (up to 5 MB).",
    )
    timezone = forms.CharField(
        required=False,
        max_length=64,
        help_text="The time zone the participant's Withings app was in (the Date column is local time). "
        "Empty: the participant's time zone.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ARCHIVE_BYTES:
            raise forms.ValidationError(str(ImportFileError("The file is too large (at most 50 MB).")))
        return upload

    def clean_timezone(self):
        value = self.cleaned_data["timezone"].strip()
        if value and value not in zoneinfo.available_timezones():
            raise forms.ValidationError(f"{value!r} is not a known IANA time zone (e.g. Australia/Perth).")
        return value
