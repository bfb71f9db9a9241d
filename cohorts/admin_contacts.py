"""Participants' contact details in the admin: coordinators of the participant's study (or site)
only — not data managers, not investigators. Lists say *whether* there is an e-mail or a number,
never which; the values appear only after "Show contact details", which is audited, and every change
is audited (without the values)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from . import contacts
from .admin_base import TenantAdmin
from .forms import ContactForm
from .models import ParticipantContact
from .scoping import EDITORS


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
        return False  # created with the participant's consent or on their page

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
