"""The admin's Withings CSV import page: upload, preview, confirm. Mounted by `imports.admin` under
the admin (login, staff, 2FA); the participant comes through the admin's scoped queryset and the
write is re-checked against the study roles. Staging and importing are `staging`'s services."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .archive import ImportFileError
from .forms import UploadForm
from .staging import csv_upload_confirm, csv_upload_preview

PREVIEW_ROWS = 200


def _context(admin_site, request, **extra) -> dict:
    return {**admin_site.each_context(request), **extra}


def import_page(request, model_admin, pk: int):
    participant = get_object_or_404(model_admin.get_queryset(request).select_related("study", "site"), pk=pk)
    model_admin.check_tenant_write(request, participant.study_id, participant.site_id)
    admin_site = model_admin.admin_site
    changelist = reverse("admin:measurements_withingscsvimport_changelist")
    if request.method == "POST" and "staged" in request.POST:
        try:
            plan = csv_upload_confirm(
                actor=request.user, participant=participant, signed=request.POST["staged"]
            )
        except ImportFileError as exc:
            messages.error(request, "Nothing was imported. " + " ".join(exc.messages))
            return redirect(request.path)
        counts = plan.counts()
        messages.success(
            request,
            f"{participant.code}: {counts['added']} readings imported; "
            f"{counts['already_present']} already present, {counts['pulse_only']} pulse-only rows skipped, "
            f"{counts['flagged_local_time']} flagged.",
        )
        return redirect(changelist)

    form = UploadForm(request.POST or None, request.FILES or None)
    context = {"participant": participant, "form": form, "changelist_url": changelist}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            plan, staged = csv_upload_preview(
                actor=request.user,
                participant=participant,
                upload=upload,
                timezone=form.cleaned_data["timezone"],
            )
        except ImportFileError as exc:
            for message in exc.messages:
                form.add_error("file", message)
        else:
            context.update(
                plan=plan,
                counts=plan.counts(),
                staged=staged,
                to_add=plan.to_add[:PREVIEW_ROWS],
                preview_rows=PREVIEW_ROWS,
                filename=upload.name,
            )
            return TemplateResponse(
                request,
                "admin/measurements/withingscsvimport/preview.html",
                _context(admin_site, request, title=f"Preview: import into {participant.code}", **context),
            )
    return TemplateResponse(
        request,
        "admin/measurements/withingscsvimport/upload.html",
        _context(admin_site, request, title=f"Import a Withings export into {participant.code}", **context),
    )
