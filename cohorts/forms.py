"""Participant-facing forms: eligibility, e-consent and contact details (plain language, labelled fields)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.language import supported

from .contacts import ContactDetails, phone_normalise, study_region
from .models import LANGUAGES, ConsentTextMixin, ParticipantContact, Study


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

    def __init__(self, *args, document: ConsentTextMixin, **kwargs) -> None:
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


class ContactForm(forms.Form):
    """How the study may reach the participant (optional), and whether they want reminders. The
    field names are a contract (an ``email`` input, a ``tel`` input, the opt-in, the language)."""

    email = forms.EmailField(
        label=_("E-mail address (optional)"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label=_("Mobile number (optional)"),
        help_text=_("With the country code, e.g. +44 7700 900123."),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    preferred_channel = forms.ChoiceField(
        label=_("How should we contact you?"),
        choices=ParticipantContact.Channel.choices,
        initial=ParticipantContact.Channel.SMS,
        required=False,  # optional like the whole block: SMS when a number is given, else e-mail
        widget=forms.RadioSelect,
    )
    language = forms.ChoiceField(
        label=_("Language of our messages"), choices=LANGUAGES, initial="en", required=False
    )
    reminders_opt_in = forms.BooleanField(
        label=_("Yes, send me reminders to take my readings (at most a few a week, never at night)."),
        required=False,
    )

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.region = study_region(study)
        if not self.initial.get("language"):
            self.initial["language"] = supported(get_language()) or "en"
        if self.region:
            self.fields["phone"].help_text = _("A number from another country needs its code, e.g. +44.")

    def clean_phone(self) -> str:
        return phone_normalise(self.cleaned_data.get("phone", ""), region=self.region)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.details().clean()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    self.add_error(field, message)
        return cleaned

    def details(self) -> ContactDetails:
        data = self.cleaned_data
        return ContactDetails(
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            preferred_channel=data.get("preferred_channel") or ParticipantContact.Channel.SMS,
            language=data.get("language") or supported(get_language()) or "en",
            reminders_opt_in=bool(data.get("reminders_opt_in")),
        )

    @classmethod
    def initial_for(cls, contact: ParticipantContact | None) -> dict[str, object]:
        if contact is None:
            return {}
        return {
            "email": contact.email,
            "phone": contact.phone,
            "preferred_channel": contact.preferred_channel,
            "language": contact.language,
            "reminders_opt_in": contact.reminders_opt_in,
        }
