"""The export page's form: format, date range, sites and participant statuses."""

from __future__ import annotations

from django import forms

from cohorts.models import Participant, Site, Study
from measurements.models import ExportJob

from .rows import ExportFilters


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportJob.Format.choices, widget=forms.RadioSelect, initial="csv")
    since = forms.DateField(
        required=False, label="From (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Until (UTC day, inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
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

    def __init__(self, *args, study: Study, restricted_site: Site | None = None, **kwargs):
        super().__init__(*args, **kwargs)
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
