from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import now

from core.localtime import zoned_column

from . import (
    admin_contacts,  # noqa: F401 — registers ParticipantContactAdmin
    admin_views,
    contacts,
    enrollment,
    handouts,
    services,
)
from .admin_base import (
    LabelledInlineFormSet,
    ReadOnlyTenantAdmin,
    TenantAdmin,
    admin_page,
    may_act_in,
    request_memberships,
)
from .admin_import import ParticipantImportMixin
from .models import (
    AuditEvent,
    ConsentDocument,
    ConsentRecord,
    ConsentText,
    EligibilityQuestion,
    ExportRights,
    Invitation,
    Participant,
    ParticipantContact,
    Site,
    Study,
    StudyMembership,
    User,
)
from .scoping import EDITORS
from .templatetags.portal_admin import readable_action, readable_detail


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Operators only: staff accounts for studies are created through memberships."""

    ordering = ["email"]
    list_display = ["email", "is_staff", "is_superuser", "is_active", "last_login"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Names", {"fields": ("first_name", "last_name")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ()
    list_filter = ("is_staff", "is_superuser", "is_active")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    has_view_permission = has_change_permission = has_add_permission = has_delete_permission = (
        lambda self, request, obj=None: request.user.is_active and request.user.is_superuser
    )


class EligibilityQuestionInline(admin.TabularInline):
    model = EligibilityQuestion
    formset = LabelledInlineFormSet
    extra = 0
    fields = ["order", "text", "required_answer"]

    def _editable(self, request, obj):
        return (
            obj is None
            or request.user.is_superuser
            or any(
                s == obj.pk and site is None and role in EDITORS
                for s, site, role in request_memberships(request)
            )
        )

    def has_add_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj)


@admin.register(Study)
class StudyAdmin(TenantAdmin):
    inlines = [EligibilityQuestionInline]
    study_wide_edits = True  # study settings: coordinators of the whole study, not of one site
    list_display = ["name", "slug", "status", "enrollment_mode", "start_date", "end_date"]
    list_filter = ["status", "enrollment_mode"]
    search_fields = ["name", "slug"]

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj is not None and not request.user.is_superuser else []

    def save_model(self, request, obj, form, change):
        save = services.study_update if change else services.study_create
        save(actor=request.user, study=obj, fields=form.changed_data)


@admin.register(Site)
class SiteAdmin(TenantAdmin):
    list_display = ["code", "name", "study"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "name"]
    list_select_related = ["study"]
    delete_roles = EDITORS
    study_wide_edits = True

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, obj.pk)
        super().save_model(request, obj, form, change)


def _export_rights_field() -> forms.ChoiceField:
    """Not required: a form posted without it keeps the current right (full for a new role)."""
    return forms.ChoiceField(
        choices=ExportRights.choices,
        initial=ExportRights.FULL,
        required=False,
        help_text=StudyMembership._meta.get_field("export_rights").help_text,
    )


class MembershipAddForm(forms.ModelForm):
    email = forms.EmailField(
        help_text="The person gets an e-mail: to set a password (then two-factor sign-in) if they "
        "have no account yet, or telling them of the new role if they have one."
    )
    export_rights = _export_rights_field()

    class Meta:
        model = StudyMembership
        fields = ["study", "email", "role", "site", "export_rights"]

    def clean(self):
        data = super().clean()
        study, site = data.get("study"), data.get("site")
        if study and site and site.study_id != study.pk:
            self.add_error("site", "This site belongs to another study.")
        email = data.get("email")
        if (
            study
            and email
            and StudyMembership.objects.filter(study=study, user__email__iexact=email).exists()
        ):
            self.add_error("email", "This person already has a role in this study.")
        if email and User.objects.filter(email__iexact=email, is_superuser=True).exists():
            self.add_error("email", services.OPERATOR_REFUSED)
        return data

    def _post_clean(self):
        # The user is attached by the service; skip the model's own validation of `user`, but
        # place the row for the admin's check of where the coordinator may give roles.
        self.instance.study = self.cleaned_data.get("study")
        self.instance.site = self.cleaned_data.get("site")


class MembershipChangeForm(forms.ModelForm):
    """Role, site, and the clinical-safety details: the designated clinician/PI flag and a mobile
    number for escalation texts (write-only: the page shows only its last digits)."""

    new_phone = forms.CharField(
        required=False,
        label="Mobile number for safety escalations",
        help_text="E.164, e.g. +44 7700 900123. Leave empty to keep the number on file.",
    )
    remove_phone = forms.BooleanField(required=False, label="Remove the number on file")
    export_rights = _export_rights_field()

    class Meta:
        model = StudyMembership
        fields = ["role", "site", "export_rights", "safety_clinician"]

    def clean_new_phone(self):
        raw = self.cleaned_data["new_phone"].strip()
        if raw:
            return contacts.phone_normalise(raw, region=contacts.study_region(self.instance.study))
        return raw

    def clean_export_rights(self):
        return self.cleaned_data.get("export_rights") or self.instance.export_rights or ExportRights.FULL


@admin.register(StudyMembership)
class StudyMembershipAdmin(TenantAdmin):
    list_display = ["user", "study", "role", "site", "export_rights", "created_at"]
    list_filter = ["role", ("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__email"]
    list_select_related = ["user", "study", "site"]
    delete_roles = EDITORS

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = MembershipAddForm if obj is None else MembershipChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        fields = ["role", "site", "export_rights"]
        if obj is None:
            return ["study", "email", *fields]
        return ["user", "study", *fields, "safety_clinician", "phone_on_file", "new_phone", "remove_phone"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "study", "phone_on_file"]

    @admin.display(description="mobile number on file")
    def phone_on_file(self, obj):
        return contacts.staff_phone_masked(obj.phone) if obj is not None else ""

    def save_model(self, request, obj, form, change):
        site = form.cleaned_data.get("site")
        study = obj.study if change else form.cleaned_data["study"]
        # A coordinator limited to a site can only hand out roles limited to that site.
        self.check_tenant_write(request, study.pk, site.pk if site else None)
        if change:
            services.membership_update(
                actor=request.user, membership=obj, role=obj.role, site=site, export_rights=obj.export_rights
            )
            new_phone = form.cleaned_data.get("new_phone") or None
            contacts.staff_safety_save(
                actor=request.user,
                membership=obj,
                safety_clinician=form.cleaned_data.get("safety_clinician", False),
                phone="" if form.cleaned_data.get("remove_phone") else new_phone,
            )
            return
        membership, new_account = services.membership_grant(
            actor=request.user,
            study=study,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            site=site,
            export_rights=form.cleaned_data.get("export_rights") or ExportRights.FULL,
        )
        obj.pk, obj.user, obj.study, obj.role, obj.site = (
            membership.pk,
            membership.user,
            study,
            membership.role,
            site,
        )
        services.membership_welcome(request=request, membership=membership, new_account=new_account)
        # The same message whether or not the account existed: coordinators do not learn who has one.
        messages.info(request, f"{membership.user.email} now has this role; an e-mail was sent to them.")

    def delete_model(self, request, obj):
        self.check_tenant_write(request, obj.study_id, obj.site_id)
        services.membership_revoke(actor=request.user, membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            self.delete_model(request, membership)


class ParticipantAddForm(forms.ModelForm):
    """Adding a participant is one step: the code and time zone may be left to the portal, and the
    invitation is created at the same time (then the handout page opens)."""

    invite = forms.BooleanField(
        label="Create an invitation now",
        required=False,
        initial=True,
        help_text="Then a handout opens: QR code, link to copy, page to print or PDF.",
    )
    invitation_days = forms.IntegerField(
        label="Invitation valid for (days)", min_value=1, max_value=90, initial=enrollment.INVITATION_DAYS
    )

    class Meta:
        model = Participant
        fields = ["study", "site", "code", "timezone", "start_date", "end_date"]
        help_texts = {
            "code": "Pseudonymous study code, never a name. Leave empty to have one generated.",
            "timezone": "Leave empty for the study's time zone.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False
        self.fields["timezone"].required = False
        self.fields["timezone"].initial = ""

    def clean(self):
        data = super().clean()
        study = data.get("study")
        if study is not None:
            data["code"] = data.get("code") or enrollment.new_participant_code(study)
            data["timezone"] = data.get("timezone") or study.default_timezone
        return data


@admin.register(Participant)
class ParticipantAdmin(ParticipantImportMixin, TenantAdmin):
    actions = ["withdraw_participants"]
    list_display = ["code", "study", "site", "status", "link_status", "language", "timezone", "enrolled"]
    list_filter = [
        "status",
        "link_status",
        "language",
        ("study", admin.RelatedOnlyFieldListFilter),
        ("site", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["code"]
    list_select_related = ["study", "site"]
    readonly_fields = [
        "link_status",
        "language",  # the participant's own choice (their private page, or their contact details)
        "enrolled_at",
        "withdrawn_at",
        "created_at",
        "contact_details",
        "next_steps",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ParticipantAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*ParticipantAddForm.Meta.fields, "invite", "invitation_days"]
        fields = [f for f in super().get_fields(request, obj) if f != "next_steps"]
        # The help buttons lead to pages only those who may change the participant can use.
        return [*fields, "next_steps"] if self.has_change_permission(request, obj) else fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        """A coordinator of one study (or one site) finds it chosen already."""
        initial = super().get_changeform_initial_data(request)
        places = {(s, site) for s, site, role in request_memberships(request) if role in EDITORS}
        if len(places) == 1:
            study_id, site_id = places.pop()
            initial.setdefault("study", study_id)
            if site_id is not None:
                initial.setdefault("site", site_id)
        return initial

    @admin.display(description="Help")
    def next_steps(self, obj):
        relink = reverse("admin:cohorts_participant_relink", args=[obj.pk])
        invite = reverse("admin:cohorts_invitation_add") + f"?study={obj.study_id}&participant={obj.pk}"
        if obj.status in admin_views.RELINK_ENDED:
            return "—"
        if obj.status == Participant.Status.INVITED:
            return format_html('<a class="button" href="{}">Create an invitation…</a>', invite)
        return format_html('<a class="button" href="{}">Re-link help…</a>', relink)

    @admin.display(description="contact details")
    def contact_details(self, obj):
        """A link to the contact page (coordinators only open it); never the values here."""
        contact = (
            ParticipantContact.objects.filter(participant_id=obj.pk).values_list("pk", flat=True).first()
        )
        if contact is None and obj.status == Participant.Status.WITHDRAWN:
            return "none given"
        if contact is None:  # coordinators of the participant's study or site may add them
            url = reverse("admin:cohorts_participantcontact_add_for", args=[obj.pk])
            return format_html('none given · <a href="{}">Add contact details…</a>', url)
        url = reverse("admin:cohorts_participantcontact_change", args=[contact])
        return format_html('<a href="{}">Contact details and delivery log</a>', url)

    enrolled = zoned_column("enrolled_at", zone="", description="enrolled")

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, obj.site_id)
        if change:
            services.participant_update(actor=request.user, participant=obj)
            return
        days = form.cleaned_data["invitation_days"] if form.cleaned_data.get("invite") else None
        _participant, invitation = enrollment.participant_create_with_invitation(
            actor=request.user, participant=obj, invitation_days=days
        )
        request._portal_new_invitation = invitation

    def response_add(self, request, obj, post_url_continue=None):
        invitation = getattr(request, "_portal_new_invitation", None)
        if invitation is not None and "_continue" not in request.POST and "_addanother" not in request.POST:
            self.message_user(request, f"{obj.code} was added with an invitation.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:cohorts_invitation_handout", args=[invitation.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        return [
            admin_page(
                self.admin_site, "<int:pk>/relink/", admin_views.relink_view, "cohorts_participant_relink"
            ),
            *super().get_urls(),
        ]

    def _editable_selection(self, request, queryset):
        return [p for p in queryset.select_related("study") if may_act_in(request, p.study_id, p.site_id)]

    @admin.action(description="Withdraw (stop collection, revoke Withings access)", permissions=["change"])
    def withdraw_participants(self, request, queryset):
        selection = self._editable_selection(request, queryset)
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/cohorts/participant/withdraw_confirm.html",
                {**self.admin_site.each_context(request), "participants": selection,
                 "opts": self.model._meta, "action": "withdraw_participants",
                 "title": "Withdraw participants"},
            )  # fmt: skip
        done = sum(
            enrollment.participant_withdraw(participant=p, actor=request.user, reason="coordinator")
            for p in selection
        )
        self.message_user(request, f"{done} participant(s) withdrawn.", messages.SUCCESS)
        return None


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(TenantAdmin):
    study_wide_edits = True
    list_display = ["title", "study", "version", "created_at", "created_by"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["version", "created_at", "created_by"]
    list_select_related = ["study", "created_by"]
    fields = ["study", "title", "body", "statements", "version", "created_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "study"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Saving never edits a version in place: it publishes a new one."""
        self.check_tenant_write(request, obj.study_id, None)
        document = enrollment.consent_document_publish(
            actor=request.user, study=obj.study, title=obj.title, body=obj.body, statements=obj.statements
        )
        obj.pk, obj.version = document.pk, document.version
        if change:
            self.message_user(
                request, f"Saved as a new version (v{document.version}); earlier consents keep theirs."
            )


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyTenantAdmin):
    list_display = ["participant", "version", "language", "consented", "keep_data_on_withdrawal"]
    consented = zoned_column("consented_at", zone="participant", description="consented")
    list_select_related = ["participant", "participant__study"]
    search_fields = ["participant__code"]
    # The typed signature is identifying: never shown in the admin.
    fields = [
        "participant", "document", "version", "language", "text_sha256", "keep_data_on_withdrawal",
        "consented_at",
    ]  # fmt: skip
    readonly_fields = fields


@admin.register(ConsentText)
class ConsentTextAdmin(TenantAdmin):
    """A consent version's text in Spanish or French: added once, never edited (a corrected
    translation goes with a new version of the consent form)."""

    study_wide_edits = True
    list_display = ["title", "document", "language", "created_at", "created_by"]
    list_filter = ["language", ("document__study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["document", "document__study", "created_by"]
    fields = ["document", "language", "title", "body", "statements", "created_at", "created_by"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return self.fields
        return ["created_at", "created_by"]

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.document.study_id, None)
        text = enrollment.consent_text_add(
            actor=request.user, document=obj.document, language=obj.language, title=obj.title,
            body=obj.body, statements=obj.statements,
        )  # fmt: skip
        obj.pk = text.pk


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["study", "participant", "expires_at"]

    def clean(self):
        data = super().clean()
        participant = data.get("participant")
        refusal = participant is not None and enrollment.invitation_refusal(participant)
        if self.instance.pk is None and refusal:
            self.add_error("participant", refusal)
        return data


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    form = InvitationForm
    list_display = ["participant", "study", "expires", "used", "created"]
    expires = zoned_column("expires_at", zone="participant", description="expires")
    used = zoned_column("used_at", zone="participant", description="used")
    created = zoned_column("created_at", zone="participant", description="created")
    list_filter = [("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["participant__code"]
    list_select_related = ["participant", "study"]
    fields = ["study", "participant", "expires_at", "enrollment_link", "qr_code", "used_at"]
    readonly_fields = ["enrollment_link", "qr_code", "used_at"]
    delete_roles = EDITORS
    LINK_FIELDS = ("enrollment_link", "qr_code")

    def get_fields(self, request, obj=None):
        # The link is the invitation itself: only those who may hand it out (coordinators) see it.
        fields = super().get_fields(request, obj)
        if obj is not None and not may_act_in(request, obj.study_id, obj.participant.site_id):
            return [f for f in fields if f not in self.LINK_FIELDS]
        return fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("expires_at", now() + dt.timedelta(days=enrollment.INVITATION_DAYS))
        return initial

    @admin.display(description="Enrollment link")
    def enrollment_link(self, obj):
        if obj.pk is None:
            return "Shown after saving."
        handout = reverse("admin:cohorts_invitation_handout", args=[obj.pk])
        return format_html(
            '<a href="{0}">{0}</a><br><a class="button" href="{1}">Handout (QR code, copy, print, PDF)</a>',
            admin_views.invitation_url(obj),
            handout,
        )

    @admin.display(description="QR code")
    def qr_code(self, obj):
        if obj.pk is None:
            return ""
        return mark_safe(handouts.qr_svg(admin_views.invitation_url(obj)))  # noqa: S308 — SVG generated by qrcode from our own URL

    def response_add(self, request, obj, post_url_continue=None):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"Invitation for {obj.participant.code} created.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:cohorts_invitation_handout", args=[obj.pk]))

    def get_urls(self):
        site, views = self.admin_site, admin_views
        return [
            admin_page(site, "<int:pk>/handout/", views.invitation_handout, "cohorts_invitation_handout"),
            admin_page(
                site, "<int:pk>/handout.pdf", views.invitation_handout_pdf, "cohorts_invitation_handout_pdf"
            ),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, obj.participant.site_id)
        save = enrollment.invitation_update if change else enrollment.invitation_create
        save(actor=request.user, invitation=obj)

    def delete_model(self, request, obj):
        self.check_tenant_write(request, obj.study_id, obj.participant.site_id)
        enrollment.invitation_delete(actor=request.user, invitation=obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for invitation in queryset.select_related("participant"):
            self.delete_model(request, invitation)


class AuditActionFilter(admin.SimpleListFilter):
    """The actions recorded, as words; the same query string as Django's field filter."""

    title = "action"
    parameter_name = "action__exact"

    def lookups(self, request, model_admin):
        actions = model_admin.get_queryset(request).order_by("action").values_list("action", flat=True)
        return [(code, readable_action(code)) for code in actions.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["when", "actor_label", "action_label", "study", "participant", "target"]
    when = zoned_column("created_at", zone="participant", description="when")
    list_filter = [AuditActionFilter, ("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["action", "target", "actor_label", "participant__code"]
    list_select_related = ["study", "participant"]
    date_hierarchy = "created_at"
    fields = ["created_at", "actor_label", "action_label", "study", "participant", "target", "details"]
    readonly_fields = fields

    @admin.display(description="action", ordering="action")
    def action_label(self, event):
        return readable_action(event.action)

    @admin.display(description="Details")
    def details(self, event):
        return readable_detail(event.detail)
