"""The REDCap project form: the token is asked for, never shown back; the field map is one input per
value the portal can send; the whole is checked against the project's metadata before it is saved."""

from __future__ import annotations

from django import forms
from django.db import models

from .mapping import READING_SOURCES, SUMMARY_SOURCES, sources_for
from .models import RedcapProject, redcap_name
from .services import ProjectCheck, redcap_project_check

MAP_PREFIX = "map_"


def map_field_names(mode: str) -> list[str]:
    return [f"{MAP_PREFIX}{mode}_{name}" for name in sources_for(mode)]


def _formfield(db_field, **kwargs):
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class RedcapProjectForm(forms.ModelForm):
    api_url = forms.URLField(
        label="API URL",
        max_length=300,
        assume_scheme="https",
        help_text="The REDCap server's API address, ending in /api/.",
    )
    token = forms.CharField(
        label="API token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The project's API token (REDCap → API). Stored encrypted and never shown again; "
        "leave empty to keep the current one.",
    )

    class Meta:
        model = RedcapProject
        formfield_callback = _formfield
        fields = [
            "study", "api_url", "token", "record_prefix", "event", "mode", "instrument", "period_days",
            "auto_push", "push_every_hours", "batch_size",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.check: ProjectCheck | None = None
        current = self.instance.field_map if self.instance.pk else {}
        for mode, sources in (
            (RedcapProject.Mode.READINGS, READING_SOURCES),
            (RedcapProject.Mode.SUMMARY, SUMMARY_SOURCES),
        ):
            for source in sources:
                name = f"{MAP_PREFIX}{mode}_{source.name}"
                self.fields[name] = forms.CharField(
                    label=source.label,
                    required=False,
                    max_length=100,
                    validators=[redcap_name],
                    initial=current.get(source.name, "") if self.instance.mode == mode else "",
                    help_text=f"REDCap field name ({'readings' if mode == 'readings' else 'summary'} mode). "
                    "Empty: not sent.",
                )
        if not self.instance.pk:
            self.fields["token"].required = True
            self.fields[
                "token"
            ].help_text = "The project's API token (REDCap → API). Stored encrypted; never shown again."

    def field_map(self) -> dict[str, str]:
        mode = self.cleaned_data.get("mode") or RedcapProject.Mode.READINGS
        out = {}
        for source in sources_for(mode):
            value = (self.cleaned_data.get(f"{MAP_PREFIX}{mode}_{source}") or "").strip()
            if value:
                out[source] = value
        return out

    def clean_token(self):
        token = self.cleaned_data.get("token", "")
        self.token_given = bool(token)
        if not token and self.instance.pk:
            return None  # keep the stored one
        return token

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        token = data.get("token") or (self.instance.token if self.instance.pk else "")
        self.check = redcap_project_check(
            api_url=data["api_url"], token=token, mode=data["mode"], instrument=data["instrument"],
            event=data.get("event", ""), field_map=self.field_map(),
        )  # fmt: skip
        for problem in self.check.problems:
            self.add_error(None, problem)
        return data

    def _post_clean(self):
        token = self.cleaned_data.get("token")
        if token is None and self.instance.pk:
            self.cleaned_data["token"] = self.instance.token
        super()._post_clean()
        if not self.errors:
            self.instance.field_map = self.field_map()
