"""The export page's form: format, date range, sites and participant statuses."""

from __future__ import annotations

from django import forms

from cohorts.models import Participant, Site, Study
from measurements.models import ExportJob

from .rows import DATES_ZONE, ExportFilters


def dates_help(study: Study) -> str:
    """Say that the days are UTC days, and that they are not the study's own days when those differ."""
    text = f"Both dates are {DATES_ZONE}; leave empty for no limit."
    if study.default_timezone != "UTC":
        text += (
            f" They are not days in the study's zone ({study.default_timezone}): near midnight, a "
            "reading's local date (measured_at_local) can be a day before or after its UTC date."
        )
    return text


ISO_DATE = {"placeholder": "YYYY-MM-DD", "pattern": r"\d{4}-\d{2}-\d{2}", "autocomplete": "off", "size": 10}
ISO_DATE_ERROR = {"invalid": "Enter the date as YYYY-MM-DD, for example 2026-03-01."}


def _iso_date(label: str) -> forms.DateField:
    """A date typed as YYYY-MM-DD: the browser's date picker would show the viewer's locale format."""
    return forms.DateField(
        required=False,
        label=label,
        input_formats=["%Y-%m-%d"],
        error_messages=ISO_DATE_ERROR,
        widget=forms.DateInput(format="%Y-%m-%d", attrs=ISO_DATE),
    )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportJob.Format.choices, widget=forms.RadioSelect, initial="csv")
    since = _iso_date("From (YYYY-MM-DD, UTC)")
    until = _iso_date("Until (YYYY-MM-DD, UTC, inclusive)")
    sites = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None: all."
    )
    statuses = forms.MultipleChoiceField(
        required=False,
        choices=Participant.Status.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Participant status",
        help_text="None: all.",
    )

    deidentified = forms.BooleanField(
        required=False,
        label="De-identified",
        help_text="Dates shifted by a secret per-participant offset (whole weeks: time of day and weekday "
        "kept), device and Withings group ids replaced by keyed hashes, free text dropped.",
    )

    def __init__(
        self,
        *args,
        study: Study,
        restricted_site: Site | None = None,
        deidentified_only: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["until"].help_text = dates_help(study)
        if deidentified_only:
            # Which readings a date range selects would reveal their real dates.
            del self.fields["since"]
            del self.fields["until"]
            # A disabled field ignores what is posted: the value is always True (and the service checks too).
            self.fields["deidentified"].initial = True
            self.fields["deidentified"].disabled = True
            self.fields["deidentified"].help_text += " Your role allows de-identified exports only."
        if restricted_site is not None:
            del self.fields["sites"]
        else:
            self.fields["sites"].choices = [(s.code, s.name) for s in Site.objects.filter(study=study)]
            if not self.fields["sites"].choices:
                del self.fields["sites"]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            since=data.get("since"),
            until=data.get("until"),
            sites=tuple(data.get("sites") or ()),
            statuses=tuple(data.get("statuses") or ()),
        )
