"""Participant-facing forms: eligibility and e-consent (plain language, labelled fields)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ConsentDocument, Study


class EligibilityForm(forms.Form):
    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.questions = list(study.eligibility_questions.all())
        for question in self.questions:
            self.fields[f"q{question.pk}"] = forms.TypedChoiceField(
                label=question.text,
                choices=[("yes", _("Yes")), ("no", _("No"))],
                coerce=lambda value: value == "yes",
                widget=forms.RadioSelect,
            )

    def answers(self) -> dict[int, bool]:
        return {q.pk: self.cleaned_data[f"q{q.pk}"] for q in self.questions}


class ConsentForm(forms.Form):
    signature = forms.CharField(
        label=_("Type your full name to sign"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    keep_data = forms.TypedChoiceField(
        label=_("If you leave the study later, what should happen to the readings collected so far?"),
        choices=[
            ("keep", _("Keep them for the study")),
            ("delete", _("Delete them")),
        ],
        coerce=lambda value: value == "keep",
        widget=forms.RadioSelect,
    )
    text_sha256 = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, document: ConsentDocument, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for index, statement in enumerate(document.statement_list):
            self.fields[f"agree_{index}"] = forms.BooleanField(
                label=statement,
                required=True,
                error_messages={"required": _("Please tick this box to take part.")},
            )
        self.order_fields([f"agree_{i}" for i in range(len(document.statement_list))])

    def statement_fields(self):
        return [self[name] for name in self.fields if name.startswith("agree_")]
