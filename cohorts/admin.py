from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import (
    admin_contacts,  # noqa: F401 — registers ParticipantContactAdmin
    enrollment,
    services,
)
from .admin_base import ReadOnlyTenantAdmin, TenantAdmin, may_act_in, request_memberships
from .models import (
    AuditEvent,
    ConsentDocument,
    ConsentRecord,
    EligibilityQuestion,
    Invitation,
    Participant,
    ParticipantContact,
    Site,
    Study,
    StudyMembership,
    User,
)
from .scoping import EDITORS


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
    list_display = ["name", "slug", "status", "enrollment_mode", "start_date", "end_date"]
    list_filter = ["status", "enrollment_mode"]
    search_fields = ["name", "slug"]

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        # Study settings: coordinators of the whole study (not those limited to a site).
        if not super().has_change_permission(request, obj):
            return False
        if request.user.is_superuser or obj is None:
            return True
        return any(
            s == obj.pk and site is None and role in EDITORS for s, site, role in request_memberships(request)
        )

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

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, obj.pk)
        super().save_model(request, obj, form, change)


class MembershipAddForm(forms.ModelForm):
    email = forms.EmailField(
        help_text="The person gets an e-mail: to set a password (then two-factor sign-in) if they "
        "have no account yet, or telling them of the new role if they have one."
    )

    class Meta:
        model = StudyMembership
        fields = ["study", "email", "role", "site"]

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
        # The user is attached by the service; skip the model's own validation of `user`.
        pass


@admin.register(StudyMembership)
class StudyMembershipAdmin(TenantAdmin):
    list_display = ["user", "study", "role", "site", "created_at"]
    list_filter = ["role", ("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__email"]
    list_select_related = ["user", "study", "site"]
    delete_roles = EDITORS

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["study", "email", "role", "site"] if obj is None else ["user", "study", "role", "site"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "study"]

    def save_model(self, request, obj, form, change):
        site = form.cleaned_data.get("site")
        study = obj.study if change else form.cleaned_data["study"]
        # A coordinator limited to a site can only hand out roles limited to that site.
        self.check_tenant_write(request, study.pk, site.pk if site else None)
        if change:
            services.membership_update(actor=request.user, membership=obj, role=obj.role, site=site)
            return
        membership, new_account = services.membership_grant(
            actor=request.user,
            study=study,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            site=site,
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


@admin.register(Participant)
class ParticipantAdmin(TenantAdmin):
    actions = ["withdraw_participants", "reissue_status_link"]
    list_display = ["code", "study", "site", "status", "link_status", "timezone", "enrolled_at"]
    list_filter = [
        "status",
        "link_status",
        ("study", admin.RelatedOnlyFieldListFilter),
        ("site", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["code"]
    list_select_related = ["study", "site"]
    readonly_fields = ["link_status", "enrolled_at", "withdrawn_at", "created_at", "contact_details"]

    @admin.display(description="contact details")
    def contact_details(self, obj):
        """A link to the contact page (coordinators only open it); never the values here."""
        contact = (
            ParticipantContact.objects.filter(participant_id=obj.pk).values_list("pk", flat=True).first()
        )
        if contact is None:
            return "none given"
        url = reverse("admin:cohorts_participantcontact_change", args=[contact])
        return format_html('<a href="{}">Contact details and delivery log</a>', url)

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, obj.site_id)
        if change:
            services.participant_update(actor=request.user, participant=obj)
        else:
            services.participant_create(actor=request.user, participant=obj)

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

    @admin.action(description="Issue a new private status link", permissions=["change"])
    def reissue_status_link(self, request, queryset):
        for participant in self._editable_selection(request, queryset)[:20]:
            token = enrollment.participant_reissue_status_link(actor=request.user, participant=participant)
            url = f"{settings.PORTAL_BASE_URL}/p/{token}/"
            self.message_user(request, f"{participant.code}: {url} (the old link no longer works)")


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(TenantAdmin):
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
    list_display = ["participant", "version", "consented_at", "keep_data_on_withdrawal"]
    list_select_related = ["participant", "participant__study"]
    search_fields = ["participant__code"]
    # The typed signature is identifying: never shown in the admin.
    fields = ["participant", "document", "version", "text_sha256", "keep_data_on_withdrawal", "consented_at"]
    readonly_fields = fields


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.PORTAL_BASE_URL}/enroll/invite/{invitation.token}/"


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    list_display = ["participant", "study", "expires_at", "used_at", "created_at"]
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

    @admin.display(description="Enrollment link")
    def enrollment_link(self, obj):
        if obj.pk is None:
            return "Shown after saving."
        return format_html('<a href="{0}">{0}</a>', invitation_url(obj))

    @admin.display(description="QR code")
    def qr_code(self, obj):
        if obj.pk is None:
            return ""
        return mark_safe(_qr_svg(invitation_url(obj)))  # noqa: S308 — SVG generated by qrcode from our own URL

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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "actor_label", "action", "study", "participant", "target"]
    list_filter = ["action", ("study", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["action", "target", "actor_label", "participant__code"]
    list_select_related = ["study", "participant"]
    date_hierarchy = "created_at"
