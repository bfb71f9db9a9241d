"""Two studies with one object of every kind each: study A (whose staff attack) and study B (whose
data must never show). Every study-B value that must not leak is recorded in `World.markers`."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib.auth.models import Group
from django.db.models import Model
from django.utils import timezone

from api.models import AccessToken
from api.services import access_token_create
from cohorts.contacts import phone_lookup
from cohorts.models import ConsentRecord, ConsentText, EligibilityQuestion, ParticipantContact, Role, Study
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_path, export_job_run
from measurements.models import (
    Alert,
    AlertEscalation,
    AlertNote,
    DailyAdherence,
    Device,
    SafetyPlan,
    StudyProtocol,
    StudyProtocolVersion,
)
from messaging.models import InboundMessage, Message, MessageTemplate, Reason, StudyMessaging
from redcap_bridge.models import RedcapProject, RedcapPushedRow, RedcapPushLog
from tests.factories import (
    AuditEventFactory,
    ConsentDocumentFactory,
    InvitationFactory,
    MembershipFactory,
    ParticipantFactory,
    ReadingFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
    WithingsAppFactory,
    WithingsConnectionFactory,
)
from withings.models import Notification

PHONES = {"alpha": "+33612345601", "bravo": "+33612345602"}
REDCAP_TOKENS = {"alpha": "A1" * 16, "bravo": "B2" * 16}
ROLES = ("coordinator", "site_coordinator", "data_manager", "investigator", "no_membership")


@dataclass
class World:
    study_a: Study
    study_b: Study
    users: dict[str, Model]
    b: dict[type[Model], Model]  # one study-B object per concrete model
    a: dict[type[Model], Model]  # the same for study A (positive controls)
    markers: list[str] = field(default_factory=list)
    b_files: list[bytes] = field(default_factory=list)

    def b_object(self, model: type[Model]) -> Model:
        concrete = model._meta.concrete_model
        if concrete not in self.b:
            raise AssertionError(
                f"The isolation world has no study-B {concrete.__name__}: add one to tests/security/world.py"
            )
        return self.b[concrete]


def _study_objects(study: Study, tag: str) -> tuple[dict, dict[str, Model]]:
    """Every kind of study-owned object for one study; returns (by model, staff by role)."""
    upper = tag.upper()
    site = SiteFactory(study=study, code=f"{tag}-site", name=f"{tag.title()} Clinic Zeta")
    coord = MembershipFactory(
        study=study, role=Role.COORDINATOR, user=UserFactory(email=f"{tag}-coord@{tag}.example")
    )
    dm = MembershipFactory(
        study=study, role=Role.DATA_MANAGER, user=UserFactory(email=f"{tag}-dm@{tag}.example")
    )
    participant = ParticipantFactory(study=study, site=site, code=f"{upper}-LEAK-1")
    ParticipantFactory(study=study, site=site, code=f"{upper}-LEAK-2")
    invitation = InvitationFactory(participant=participant)
    document = ConsentDocumentFactory(
        study=study, version=1, title=f"{tag.title()} consent title", body=f"{tag.title()} consent body text"
    )
    translation = ConsentText.objects.create(
        document=document, language="es", title=f"{tag.title()} título del consentimiento",
        body=f"{tag.title()} texto traducido del consentimiento", statements=document.statements,
    )  # fmt: skip
    record = ConsentRecord.objects.create(
        participant=participant, document=document, version=1, text_sha256="0" * 64,
        rendered_text=f"{tag.title()} consent body text", signature=f"{tag.title()} Signer Name",
        keep_data_on_withdrawal=True,
    )  # fmt: skip
    question = EligibilityQuestion.objects.create(study=study, text=f"{tag.title()} eligibility question?")
    app = WithingsAppFactory(
        study=study, client_id=f"{tag}-app-client-id", client_secret=f"{tag}-app-client-secret"
    )
    connection = WithingsConnectionFactory(
        participant=participant,
        app_client_id=f"{tag}-app-client-id",
        withings_userid=str(secrets.randbelow(10**9) + 7 * 10**10),
    )
    reading = ReadingFactory(
        participant=participant, systolic=Decimal("187"), device_id=f"{tag}devicehash0001"
    )
    device = Device.objects.create(
        participant=participant, device_id=f"{tag}devicehash0001", model="BPM Connect", battery="low"
    )
    protocol = StudyProtocol.objects.create(study=study)
    version = StudyProtocolVersion.objects.create(
        study=study, number=1, effective_from=StudyProtocolVersion.BEGINNING, **protocol.rules()
    )
    adherence = DailyAdherence.objects.create(
        study=study,
        participant=participant,
        day=dt.date(2024, 3, 1),
        counted=1,
        expected=4,
        protocol_version=version,
    )
    alert = Alert.objects.create(
        study=study, participant=participant, kind=Alert.Kind.CRISIS, episode_key=f"{tag}-episode",
        detail={"value": "187/95"}, note=f"{tag.title()} alert note: called the GP",
    )  # fmt: skip
    alert_note = AlertNote.objects.create(alert=alert, author=coord.user, text=f"{tag} follow-up: GP seen")
    safety_plan = SafetyPlan.objects.create(
        study=study, version=1, severe_message=f"{tag.title()} safety plan message",
        approval_reference=f"{tag.upper()}-IRB-7",
    )  # fmt: skip
    escalation = AlertEscalation.objects.create(
        alert=alert,
        step=0,
        audience=SafetyPlan.Audience.COORDINATORS,
        deadline_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
    )
    notification = Notification.objects.create(
        dedupe_key=secrets.token_hex(32), userid=connection.withings_userid, appli=4, connection=connection,
        payload={"userid": connection.withings_userid, "appli": "4"}, status=Notification.Status.PROCESSED,
    )  # fmt: skip
    audit = AuditEventFactory(participant=participant, target=f"{upper}-LEAK-1", actor_label=coord.user.email)
    job = export_job_create(actor=dm.user, study=study, fmt="csv", filters=ExportFilters(), run=False)
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    email = EmailAddress.objects.create(user=coord.user, email=coord.user.email, verified=True, primary=True)
    contact = ParticipantContact.objects.create(
        participant=participant, email=f"{tag}-participant@{tag}.example", phone=PHONES[tag],
        phone_lookup=phone_lookup(PHONES[tag]), reminders_opt_in=True,
    )  # fmt: skip
    rules = StudyMessaging.objects.create(study=study)
    template = MessageTemplate.objects.create(
        study=study, reason=Reason.PROMPT, channel="sms", version=1, body=f"{tag.title()} template wording"
    )
    message = Message.objects.create(
        study=study, participant=participant, reason=Reason.PROMPT, dedupe_key=f"{tag}-prompt", channel="sms",
        template=template, body=f"{tag.title()} message body", provider_id=f"SM{tag}provider",
        local_day=dt.date(2024, 3, 1),
    )  # fmt: skip
    inbound = InboundMessage.objects.create(
        study=study,
        participant=participant,
        provider_id=f"SM{tag}inbound",
        body=f"{tag.title()} inbound text",
    )
    token, _plaintext = access_token_create(
        user=dm.user, name=f"{tag.title()} nightly pull", expires_at=timezone.now() + dt.timedelta(days=30)
    )
    redcap = RedcapProject.objects.create(
        study=study, api_url=f"https://redcap.{tag}.example/api/", token=REDCAP_TOKENS[tag],
        instrument="home_bp", field_map={"systolic": "bp_sys"}, record_prefix=f"{upper}-REC-",
    )  # fmt: skip
    push_log = RedcapPushLog.objects.create(
        study=study, project=redcap, trigger="command", status="failed", error=f"{tag.title()} REDCap error"
    )
    pushed = RedcapPushedRow.objects.create(
        project=redcap, participant=participant, source_key=f"reading:{reading.pk}",
        record=f"{upper}-REC-{participant.code}", instrument="home_bp", instance=1,
    )  # fmt: skip
    objects = {
        AccessToken: token,
        RedcapProject: redcap, RedcapPushLog: push_log, RedcapPushedRow: pushed,
        Study: study, apps.get_model("cohorts", "Site"): site, type(coord): coord,
        type(participant): participant, type(invitation): invitation, type(document): document,
        ConsentText: translation,
        ConsentRecord: record, EligibilityQuestion: question, type(app): app, type(connection): connection,
        type(reading): reading, Device: device, StudyProtocol: protocol, StudyProtocolVersion: version,
        DailyAdherence: adherence,
        Alert: alert, AlertNote: alert_note, SafetyPlan: safety_plan, AlertEscalation: escalation,
        Notification: notification, type(audit): audit, type(job): job,
        type(coord.user): coord.user, EmailAddress: email, ParticipantContact: contact, StudyMessaging: rules,
        MessageTemplate: template, Message: message, InboundMessage: inbound,
        Authenticator: Authenticator.objects.get(user=coord.user),
        Group: Group.objects.create(name=f"{tag}-staff-group"),
    }  # fmt: skip
    return objects, {"coordinator": coord.user, "data_manager": dm.user}


def build_world() -> World:
    study_a = StudyFactory(
        slug="alpha-sweep", name="Alpha Sweep Study", enrollment_mode=Study.EnrollmentMode.OPEN
    )
    # B is invitation-only: its open link must not exist for anyone.
    study_b = StudyFactory(slug="bravo-secret", name="Bravo Secret Study")
    a_objects, _ = _study_objects(study_a, "alpha")
    b_objects, _b_staff = _study_objects(study_b, "bravo")
    site_a = a_objects[apps.get_model("cohorts", "Site")]
    users = {
        "coordinator": MembershipFactory(study=study_a, role=Role.COORDINATOR).user,
        "site_coordinator": MembershipFactory(study=study_a, role=Role.COORDINATOR, site=site_a).user,
        "data_manager": MembershipFactory(study=study_a, role=Role.DATA_MANAGER).user,
        "investigator": MembershipFactory(study=study_a, role=Role.INVESTIGATOR).user,
        "no_membership": UserFactory(),
    }
    job = b_objects[apps.get_model("measurements", "ExportJob")]
    connection = b_objects[apps.get_model("withings", "WithingsConnection")]
    markers = [
        study_b.name, study_b.slug, "Bravo Clinic Zeta", "bravo-site", "BRAVO-LEAK-1", "BRAVO-LEAK-2",
        "bravo-coord@bravo.example", "bravo-dm@bravo.example",
        b_objects[apps.get_model("cohorts", "Invitation")].token,
        "Bravo consent title", "Bravo consent body text", "Bravo Signer Name", "Bravo eligibility question",
        "bravo-app-client-id", "bravo-app-client-secret", "bravodevicehash0001", "Bravo alert note",
        "bravo-episode", "bravo-staff-group", connection.withings_userid, connection.access_token,
        connection.refresh_token,
        job.filename, str(job.uuid), job.sha256,
        "bravo-participant@bravo.example", PHONES["bravo"], "Bravo template wording", "Bravo message body",
        "SMbravoprovider", "Bravo inbound text", "Bravo safety plan message", "BRAVO-IRB-7",
        "Bravo texto traducido del consentimiento",
        "Bravo nightly pull", b_objects[AccessToken].prefix, b_objects[AccessToken].token_hash,
        REDCAP_TOKENS["bravo"], "redcap.bravo.example", "Bravo REDCap error",
    ]  # fmt: skip
    files = [export_job_path(job).read_bytes()]
    assert job.status == "done", "study B's export must have a file to protect"
    assert files[0]
    return World(study_a, study_b, users, b_objects, a_objects, markers, files)


def tenant_models() -> list[type[Model]]:
    return [m for m in apps.get_models() if getattr(m, "TENANT_PATHS", None) is not None]


def study_b_rows(world: World) -> dict[tuple[str, object], str]:
    """A fingerprint of every study-B row of every tenant model (and B's staff)."""
    rows: dict[tuple[str, object], str] = {}
    for model in tenant_models():
        study_path, _site = model.TENANT_PATHS
        lookup = "pk" if study_path == "pk" else f"{study_path}"
        for values in model._default_manager.filter(**{lookup: world.study_b.pk}).values():
            values.pop("updated_at", None)
            rows[(model.__name__, values["id"])] = repr(sorted(values.items(), key=lambda kv: kv[0]))
    for user in apps.get_model("cohorts", "User").objects.filter(email__startswith="bravo-").values():
        user.pop("last_login", None)
        rows[("User", user["id"])] = repr(sorted(user.items()))
    return rows


def now() -> dt.datetime:
    return timezone.now()
