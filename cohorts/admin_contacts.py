"""Participants' contact details in the admin: coordinators of the participant's study (or site)
only — not data managers, not investigators. Lists say *whether* there is an e-mail or a number,
never which; the values appear only after "Show contact details", which is audited, and every change
is audited (without the values). A coordinator adds contact details for a participant who has none
("Add contact details…" on the participant's page, ``for/<participant id>/``): same form, same audit
(``contact.created``, via coordinator), same scoping."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import contacts
from .admin_base import TenantAdmin
from .forms import ContactForm
from .models import Participant, ParticipantContact
from .scoping import EDITORS, scoped


def _contact_url(contact: ParticipantContact) -> str:
    return reverse("admin:cohorts_participantcontact_change", args=[contact.pk])


@admin.register(ParticipantContact)
class ParticipantContactAdmin(TenantAdmin):
    view_roles = EDITORS
    edit_roles = EDITORS
    list_display = [
        "participant",
        "study",
        "has_email",
        "has_phone",
        "preferred_channel",
        "language",
        "reminders_opt_in",
        "sms_stopped",
        "email_unsubscribed",
        "flagged",
    ]
    list_filter = ["preferred_channel", "reminders_opt_in", "language"]
    list_select_related = ["participant", "participant__study"]
    search_fields = ["participant__code"]

    def has_add_permission(self, request):
        return False  # no free-standing add page: "Add contact details…" of one participant (add_for_view)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_add_for"
        view = self.admin_site.admin_view(self.add_for_view)
        return [path("for/<int:participant_id>/", view, name=name), *super().get_urls()]

    def add_for_view(self, request, participant_id: int):
        """Contact details for a participant who has none: coordinators of their study (or site)."""
        participant = (
            scoped(Participant.objects.select_related("study"), request.user, EDITORS)
            .filter(pk=participant_id)
            .first()
        )
        if participant is None or not self._has_role(request, EDITORS):
            return self._get_obj_does_not_exist_redirect(request, Participant._meta, str(participant_id))
        existing = ParticipantContact.objects.filter(participant_id=participant.pk).first()
        if existing is not None:
            return HttpResponseRedirect(_contact_url(existing))
        back = reverse("admin:cohorts_participant_change", args=[participant.pk])
        if participant.status == Participant.Status.WITHDRAWN:
            refusal = f"{participant.code} has withdrawn: no contact details."
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(back)
        form = ContactForm(study=participant.study)
        if request.method == "POST":
            self.check_tenant_write(request, participant.study_id, participant.site_id)
            form = ContactForm(request.POST, study=participant.study)
            if form.is_valid():
                contact = contacts.contact_save(
                    actor=request.user, participant=participant, details=form.details(), via="coordinator"
                )
                self.message_user(request, f"Contact details of {participant.code} added.", messages.SUCCESS)
                return HttpResponseRedirect(_contact_url(contact))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Add contact details of {participant.code}",
            "participant": participant,
            "form": form,
            "back": back,
        }
        return TemplateResponse(request, "admin/cohorts/participantcontact/add_for.html", context)

    @admin.display(description="study")
    def study(self, obj):
        return obj.participant.study

    @admin.display(boolean=True, description="e-mail")
    def has_email(self, obj):
        return bool(obj.email)

    @admin.display(boolean=True, description="mobile")
    def has_phone(self, obj):
        return bool(obj.phone)

    @admin.display(boolean=True, description="replied STOP")
    def sms_stopped(self, obj):
        return obj.sms_opted_out_at is not None

    @admin.display(boolean=True, description="unsubscribed")
    def email_unsubscribed(self, obj):
        return obj.email_opted_out_at is not None

    @admin.display(description="keeps failing")
    def flagged(self, obj):
        limit = settings.MESSAGING_FLAG_AFTER_FAILURES
        bad = [
            name
            for name, count in (("mobile", obj.sms_failures), ("e-mail", obj.email_failures))
            if count >= limit
        ]
        return ", ".join(bad) or "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contact = self.get_object(request, unquote(object_id))
        if contact is None or not self.has_view_permission(request, contact):
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        participant = contact.participant
        form = None
        if request.method == "POST" and "_show" in request.POST:
            contact = contacts.contact_reveal(actor=request.user, participant=participant)
            form = ContactForm(initial=ContactForm.initial_for(contact), study=participant.study)
        elif request.method == "POST" and "_save_contact" in request.POST:
            self.check_tenant_write(request, participant.study_id, participant.site_id)
            form = ContactForm(request.POST, study=participant.study)
            if form.is_valid():
                contacts.contact_save(
                    actor=request.user, participant=participant, details=form.details(), via="coordinator"
                )
                self.message_user(request, f"Contact details of {participant.code} saved.", messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Contact details of {participant.code}",
            "contact": contact,
            "participant": participant,
            "form": form,
            "flagged": self.flagged(contact),
        }
        return TemplateResponse(request, "admin/cohorts/participantcontact/detail.html", context)
