"""A study with readings, its data managers and their tokens, and a client that sends a token."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils.timezone import now

from api.services import access_token_create
from cohorts.models import ExportRights, Role
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@dataclass
class World:
    study: object
    other: object
    full: object
    limited: object
    other_manager: object


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="alpha")
    other = StudyFactory(slug="bravo")
    north = SiteFactory(study=study, code="north")
    south = SiteFactory(study=study, code="south")
    a = ParticipantFactory(study=study, site=north, code="A-1", timezone="Europe/Paris")
    b = ParticipantFactory(study=study, site=south, code="A-2", timezone="America/Chicago")
    # 7 readings in alpha (4 + 3), interleaved in time, two of them at the same instant; 2 in bravo.
    for hours in (0, 5, 10, 15):
        ReadingFactory(participant=a, measured_at=utc(2025, 4, 1, 6) + dt.timedelta(hours=hours))
    for hours in (5, 7, 30):
        ReadingFactory(participant=b, measured_at=utc(2025, 4, 1, 6) + dt.timedelta(hours=hours))
    secret = ParticipantFactory(study=other, code="B-SECRET")
    ReadingFactory.create_batch(2, participant=secret)
    return World(
        study=study,
        other=other,
        full=MembershipFactory(study=study, role=Role.DATA_MANAGER).user,
        limited=MembershipFactory(
            study=study, role=Role.DATA_MANAGER, export_rights=ExportRights.DEIDENTIFIED
        ).user,
        other_manager=MembershipFactory(study=other, role=Role.DATA_MANAGER).user,
    )


def make_token(user, **kwargs) -> str:
    kwargs.setdefault("expires_at", now() + dt.timedelta(days=30))
    return access_token_create(user=user, name="test", **kwargs)[1]


class TokenClient:
    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def get(self, path, data=None, **headers):
        return self.client.get(path, data, HTTP_AUTHORIZATION=f"Bearer {self.token}", **headers)

    def post(self, path, body, **headers):
        return self.client.post(
            path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {self.token}", **headers
        )


@pytest.fixture
def as_user(client):
    def build(user, **kwargs) -> TokenClient:
        return TokenClient(client, make_token(user, **kwargs))

    return build
