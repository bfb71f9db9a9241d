"""Coordinators' admin for reminder rules and their wording.

Rules are previewed (what tick would send over the next 7 days) before a coordinator sets them live;
going live and pausing are audited. Wording is versioned: saving a change adds a version (an IRB
approves wording) after checking its placeholders, and each version shows a preview.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import linebreaksbr
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import now

from cohorts.admin_base import TenantAdmin, admin_page, may_act_in
from cohorts.models import Participant, Study
from cohorts.scoping import EDITORS, scoped
from cohorts.services import audit_record

from . import wording
from .models import MessageTemplate, StudyMessaging
from .one_off import OneOffRefused, one_off_channel, one_off_draft, one_off_send, one_off_templates
from .scheduler.preview import rules_preview
from .selectors import study_messaging_week

PREVIEW_DAYS = 7


@admin.register(StudyMessaging)
class StudyMessagingAdmin(TenantAdmin):
    list_display = [
        "study",
        "live",
        "prompts",
        "no_data_reminders",
        "relink_reminders",
        "quiet_hours",
        "caps",
    ]
    list_select_related = ["study"]
    readonly_fields = ["live_since", "preview_link", "last_7_days"]
    actions = ["go_live", "pause"]
    fieldsets = [
        (None, {"fields": ["study", "live_since", "preview_link", "last_7_days"]}),
        ("Rules", {"fields": ["prompts", "no_data_reminders", "no_data_days", "sync_grace_hours",
                              "relink_reminders", "low_battery_reminders"]}),
        ("Limits (participant-local time)", {"fields": ["quiet_start", "quiet_end", "max_per_day",
                                                         "max_per_week"]}),
    ]  # fmt: skip

    @admin.display(description="live", boolean=True)
    def live(self, rules):
        return rules.live_since is not None

    @admin.display(description="quiet hours")
    def quiet_hours(self, rules):
        return f"{rules.quiet_start:%H:%M}–{rules.quiet_end:%H:%M}"

    @admin.display(description="per day / week")
    def caps(self, rules):
        return f"{rules.max_per_day} / {rules.max_per_week}"

    @admin.display(description="preview")
    def preview_link(self, rules):
        if rules.pk is None:
            return "Save the rules, then preview what they would send."
        url = reverse("admin:messaging_studymessaging_preview", args=[rules.pk])
        return format_html(
            '<a href="{}">What these rules would send over the next {} days</a>', url, PREVIEW_DAYS
        )

    @admin.display(description="last 7 days")
    def last_7_days(self, rules):
        if rules.pk is None:
            return "—"
        week = study_messaging_week(rules.study)

        def pct(value):
            return "—" if value is None else f"{value:.0f} %"

        return format_html(
            "{} sent ({} failed or bounced; delivery {}), {} waiting.<br>"
            "Adherence of participants reminded: {} ({} participants); not reminded: {} ({} participants).",
            week.sent,
            week.failed,
            pct(week.delivery_percent),
            week.queued,
            pct(week.reminded.percent),
            week.reminded.participants,
            pct(week.not_reminded.percent),
            week.not_reminded.participants,
        )

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, *self.tenant_ids(obj))
        obj.updated_at = now()
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="messaging.rules_changed" if change else "messaging.rules_created",
            study=obj.study,
            target=obj.study.slug,
            detail={"fields": sorted(form.changed_data)},
        )

    def _set_live(self, request, queryset, *, live: bool) -> int:
        changed = 0
        for rules in queryset.select_related("study"):
            self.check_tenant_write(request, rules.study_id, None)
            if (rules.live_since is not None) == live:
                continue
            rules.live_since = now() if live else None
            rules.updated_at = now()
            rules.save(update_fields=["live_since", "updated_at"])
            audit_record(
                actor=request.user,
                action="messaging.rules_live" if live else "messaging.rules_paused",
                study=rules.study,
                target=rules.study.slug,
                detail={"live_since": rules.live_since.isoformat() if rules.live_since else None},
            )
            changed += 1
        return changed

    @admin.action(description="Go live: start sending (after previewing)")
    def go_live(self, request, queryset):
        count = self._set_live(request, queryset, live=True)
        self.message_user(request, f"{count} set live: tick sends their reminders from now on.")

    @admin.action(description="Pause: send no automatic reminders")
    def pause(self, request, queryset):
        count = self._set_live(request, queryset, live=False)
        self.message_user(request, f"{count} paused.")

    def get_urls(self):
        return [
            admin_page(
                self.admin_site, "<int:pk>/preview/", self.preview_view, "messaging_studymessaging_preview"
            ),
            admin_page(self.admin_site, "one-off/<int:participant_id>/", one_off_view, "messaging_one_off"),
            *super().get_urls(),
        ]

    def preview_view(self, request, site, pk: int):
        rules = get_object_or_404(self.get_queryset(request).select_related("study"), pk=pk)
        editable = may_act_in(request, rules.study_id, None, self.edit_roles)
        if request.method == "POST":
            if not editable:
                raise PermissionDenied("You cannot change the rules of this study.")
            self._set_live(request, self.get_queryset(request).filter(pk=pk), live=True)
            messages.success(request, "The rules are live: tick sends their reminders from now on.")
            return redirect("admin:messaging_studymessaging_preview", pk=pk)
        context = {
            **site.each_context(request),
            "title": f"Reminders of {rules.study.name}: the next {PREVIEW_DAYS} days",
            "rules": rules,
            "preview": rules_preview(rules=rules, start=now(), days=PREVIEW_DAYS),
            "can_go_live": editable and rules.live_since is None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/messaging/studymessaging/preview.html", context)


class TemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["study", "reason", "channel", "language", "subject", "body"]
        widgets = {"language": forms.Select(choices=wording.LANGUAGES)}

    def clean(self):
        data = super().clean()
        reason = data.get("reason")
        if reason:
            try:
                wording.validate_template(reason, data.get("subject", ""), data.get("body", ""))
            except ValidationError as exc:
                self.add_error("body", exc)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantAdmin):
    """Saving a change adds a version; versions are never overwritten or deleted."""

    form = TemplateForm
    list_display = ["study", "reason", "channel", "language", "version", "created_at", "created_by"]
    list_filter = ["reason", "channel", "language"]
    list_select_related = ["study", "created_by"]
    readonly_fields = ["version", "created_at", "created_by", "preview", "languages_side_by_side"]
    fields = [
        "study", "reason", "channel", "language", "subject", "body", "version", "created_by", "preview",
        "languages_side_by_side",
    ]  # fmt: skip

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        fixed = ["study", "reason", "channel", "language"] if obj else []
        return [*fixed, *self.readonly_fields]

    @admin.display(description="preview (a sample participant)")
    def preview(self, template):
        if template.pk is None:
            return "Save to see the text as a participant receives it."
        subject, body = wording.render(template, sample_context(template.study))
        parts = [("Subject", subject)] if subject else []
        return format_html_join(
            "",
            "<p><strong>{}:</strong><br>{}</p>",
            [(label, linebreaksbr(text)) for label, text in [*parts, ("Text", body)]],
        )

    @admin.display(description="every language, side by side")
    def languages_side_by_side(self, template):
        """The newest wording of this reason and channel in each language (the default text where
        the study has none yet), so a coordinator keeps the translations in step."""
        if template.pk is None:
            return "Save to compare the languages."
        newest: dict[str, MessageTemplate] = {}
        for row in MessageTemplate.objects.filter(
            study_id=template.study_id, reason=template.reason, channel=template.channel
        ).order_by("language", "-version"):
            newest.setdefault(row.language, row)
        cells = []
        for code, name in wording.LANGUAGES:
            row = newest.get(code)
            if row is not None:
                label, subject, body = f"{name} — version {row.version}", row.subject, row.body
            else:
                subject, body = wording.default_wording(template.reason, template.channel, code)
                label = f"{name} — default wording (not saved yet)"
            text = f"{subject}\n\n{body}" if subject else body
            cells.append((label, code, linebreaksbr(text)))
        return format_html(
            '<div style="display:grid;grid-template-columns:repeat(3,minmax(12rem,1fr));gap:1rem">{}</div>',
            format_html_join("", '<div><strong>{}</strong><p lang="{}">{}</p></div>', cells),
        )

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, *self.tenant_ids(obj))
        with transaction.atomic():
            Study.objects.select_for_update().filter(pk=obj.study_id).first()  # one new version at a time
            newest = MessageTemplate.objects.filter(
                study_id=obj.study_id, reason=obj.reason, channel=obj.channel, language=obj.language
            ).aggregate(v=Max("version"))["v"]
            obj.pk = None  # a change is a new version: the approved one stays as it was
            obj.version = (newest or 0) + 1
            obj.created_by = request.user
            obj.created_at = now()
            obj.save()
            audit_record(
                actor=request.user,
                action="messaging.template_version",
                study=obj.study,
                target=f"{obj.reason}/{obj.channel}/{obj.language}",
                detail={"version": obj.version},
            )

    def response_change(self, request, obj):
        self.message_user(request, f"Saved as version {obj.version}; earlier versions are kept.")
        return redirect("admin:messaging_messagetemplate_change", obj.pk)


def sample_context(study: Study) -> dict[str, object]:
    """Every placeholder filled for a made-up participant (previews only)."""
    from measurements.monitoring.protocol import protocol_for_study

    protocol = protocol_for_study(study.pk)
    return {
        **wording.study_context(study),
        "code": "SAMPLE-001",
        "link": "https://portal.example/messaging/m/sample/",
        "window": "morning",
        "window_start": f"{protocol.morning_start:%H:%M}",
        "window_end": f"{protocol.morning_end:%H:%M}",
        "days": 2,
    }


class OneOffForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(), required=False, empty_label="— my own text below —"
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        required=False,
        max_length=1000,
        help_text="Placeholders allowed: {study}, {code}, {team_contact}, {link}.",
    )

    def __init__(self, *args, templates: list[MessageTemplate], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = MessageTemplate.objects.filter(pk__in=[t.pk for t in templates])
        self.fields["template"].label_from_instance = lambda t: f"{t.language} v{t.version}: {t.body[:60]}"


def one_off_view(request, site, participant_id: int):
    """Worklist and participant page: write or pick the text, preview it, send it."""
    participant = get_object_or_404(
        scoped(Participant.objects.select_related("study"), request.user, EDITORS), pk=participant_id
    )
    if not may_act_in(request, participant.study_id, participant.site_id):
        raise PermissionDenied("You cannot message participants of this study or site.")
    back = reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk])
    context = {
        **site.each_context(request),
        "title": f"Message to {participant.code}",
        "participant": participant,
        "back": back,
    }
    try:
        channel = one_off_channel(participant)
    except OneOffRefused as refusal:
        return TemplateResponse(request, "admin/messaging/one_off.html", {**context, "refused": str(refusal)})
    form = OneOffForm(request.POST or None, templates=one_off_templates(participant, channel))
    draft = None
    if request.method == "POST" and form.is_valid():
        try:
            draft = one_off_draft(
                participant=participant,
                template=form.cleaned_data["template"],
                text=form.cleaned_data["text"],
            )
            if "send" in request.POST:
                one_off_send(actor=request.user, draft=draft)
                messages.success(request, f"Message to {participant.code} queued for sending ({channel}).")
                return redirect(back)
        except ValidationError as exc:
            form.add_error("text", exc)
            draft = None
        except OneOffRefused as refusal:
            return TemplateResponse(
                request, "admin/messaging/one_off.html", {**context, "refused": str(refusal)}
            )
    return TemplateResponse(
        request, "admin/messaging/one_off.html", {**context, "form": form, "draft": draft, "channel": channel}
    )
