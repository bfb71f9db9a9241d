"""The participants' "Import" button: django-import-export's upload → preview → confirm, scoped to the
studies (and sites) the coordinator may add participants to, then a printable sheet of the new
invitations (one handout per page, QR code and link), regenerated from the audited import."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV
from import_export.forms import ConfirmImportForm, ImportForm

from . import handouts
from .admin_base import admin_page, may_act_in, request_memberships
from .admin_views import _invitation_handout
from .models import AuditEvent, Invitation, Participant, Study
from .participant_import import MAX_BYTES, EncryptedCacheStorage, ParticipantImportResource
from .scoping import EDITORS, scoped
from .services import audit_record

IMPORT_ACTION = "participants.imported"


class StudyImportForm(ImportForm):
    study = forms.ModelChoiceField(
        queryset=Study.objects.none(), help_text="The study the participants join."
    )
    field_order = ["study", "resource", "import_file", "format"]

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(f"The sheet is too large (at most {MAX_BYTES // 1024} KB).")
        return upload


class StudyConfirmImportForm(ConfirmImportForm):
    study = forms.ModelChoiceField(queryset=Study.objects.none(), widget=forms.HiddenInput())


class ParticipantImportMixin(ImportMixin):
    resource_classes = [ParticipantImportResource]
    import_formats = [CSV]
    import_form_class = StudyImportForm
    confirm_form_class = StudyConfirmImportForm
    tmp_storage_class = EncryptedCacheStorage
    skip_admin_log = True  # the audit log records the import

    def has_import_permission(self, request):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or any(role in EDITORS for _s, _site, role in request_memberships(request))

    def _studies(self, request):
        return scoped(Study.objects.all(), request.user, EDITORS)

    def create_import_form(self, request):
        form = super().create_import_form(request)
        form.fields["study"].queryset = self._studies(request)
        return form

    def get_import_form_initial(self, request):
        studies = list(self._studies(request)[:2])
        return {"study": studies[0].pk} if len(studies) == 1 else {}

    def create_confirm_form(self, request, import_form=None):
        form = super().create_confirm_form(request, import_form)
        form.fields["study"].queryset = self._studies(request)
        return form

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["study"] = import_form.cleaned_data["study"].pk
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        data = getattr(form, "cleaned_data", None) or {}
        return {
            "actor": request.user,
            "study": data.get("study"),
            "memberships": request_memberships(request),
        }

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs.pop("request", None)
        kwargs["rollback_on_validation_errors"] = True  # all or nothing
        return kwargs

    def process_import(self, request, **kwargs):
        try:
            return super().process_import(request, **kwargs)
        except ValidationError as exc:  # the sheet waited too long in the cache
            messages.error(request, "Nothing was imported. " + " ".join(exc.messages))
            return HttpResponseRedirect(reverse("admin:cohorts_participant_import"))

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(
                request, "Nothing was imported: the sheet changed or a row no longer passes. Upload it again."
            )
            return HttpResponseRedirect(reverse("admin:cohorts_participant_import"))
        ids = [row.object_id for row in result.rows if row.object_id is not None]
        participants = list(Participant.objects.filter(pk__in=ids).select_related("study"))
        if not participants:
            messages.warning(request, "The sheet had no participants.")
            return HttpResponseRedirect(reverse("admin:cohorts_participant_changelist"))
        study = participants[0].study
        event = audit_record(
            actor=request.user, action=IMPORT_ACTION, study=study, target=study.slug,
            detail={"count": len(ids), "participant_ids": sorted(ids)},
        )  # fmt: skip
        messages.success(request, f"{len(ids)} participants were added, each with an invitation.")
        return HttpResponseRedirect(reverse("admin:cohorts_participant_import_sheet", args=[event.pk]))

    def get_urls(self):
        return [
            admin_page(
                self.admin_site, "import/<int:pk>/sheet/", import_sheet, "cohorts_participant_import_sheet"
            ),
            admin_page(
                self.admin_site,
                "import/<int:pk>/sheet.pdf",
                import_sheet_pdf,
                "cohorts_participant_import_sheet_pdf",
            ),
            *super().get_urls(),
        ]


def _imported_invitations(request, pk: int) -> tuple[AuditEvent, list[Invitation]]:
    """The invitations of an import the user may hand out (coordinators of the study and site)."""
    event = get_object_or_404(AuditEvent.objects.select_related("study"), pk=pk, action=IMPORT_ACTION)
    if not (request.user.is_superuser and request.user.is_active) and not any(
        s == event.study_id and role in EDITORS for s, _site, role in request_memberships(request)
    ):
        raise Http404
    ids = event.detail.get("participant_ids", [])
    invitations = [
        inv
        for inv in scoped(
            Invitation.objects.filter(participant_id__in=ids, study_id=event.study_id)
            .select_related("study", "participant__site")
            .order_by("participant__code", "-created_at"),
            request.user,
            EDITORS,
        )
        if may_act_in(request, inv.study_id, inv.participant.site_id)
    ]
    latest: dict[int, Invitation] = {}
    for inv in invitations:
        latest.setdefault(inv.participant_id, inv)
    return event, list(latest.values())


def import_sheet(request, admin_site, pk: int):
    event, invitations = _imported_invitations(request, pk)
    rows = [(inv, _invitation_handout(inv).url) for inv in invitations]
    return TemplateResponse(
        request,
        "admin/cohorts/participant/import_sheet.html",
        {
            **admin_site.each_context(request),
            "title": f"Invitations of the import of {event.created_at:%Y-%m-%d %H:%M}",
            "event": event,
            "rows": rows,
            "opts": Participant._meta,
        },
    )


def import_sheet_pdf(request, admin_site, pk: int):  # noqa: ARG001 — the admin's route signature
    event, invitations = _imported_invitations(request, pk)
    if not invitations:
        raise PermissionDenied
    pdf = handouts.handouts_pdf([_invitation_handout(inv) for inv in invitations])
    audit_record(
        actor=request.user, action="invitation.sheet_downloaded", study=event.study, target=event.study.slug,
        detail={"import": event.pk, "invitations": len(invitations)},
    )  # fmt: skip
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="invitations-{event.study.slug}-{event.pk}.pdf"'
    return response
