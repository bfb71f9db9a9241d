"""Tenant-isolation sweep: every URL of the project × every role of study A × study B's objects.

For each URL pattern (found by walking the resolver, admin included) the sweep substitutes study
B's ids, slugs and tokens for the path parameters (tests/security/urlsweep.py — an unknown parameter
fails the sweep), then GETs and POSTs it as each role of study A; admin changelists are also searched
for B's markers, filtered by B's ids, and B's ids are POSTed to every admin action. Zero leaks: none
of B's marker strings in any body or header, B's export file never served, no B row changed or added.
"""

from __future__ import annotations

from urllib.parse import unquote, urlencode

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse

from cohorts.models import Participant
from measurements.exports.services import export_job_path
from measurements.models import ExportJob
from tests.security.urlsweep import concrete_urls, endpoints
from tests.security.world import ROLES, World, build_world, study_b_rows

pytestmark = pytest.mark.django_db
# allauth's own pages carry no study data; POSTing them could end the session being tested
# (logout, TOTP deactivation), so they are only read.
READ_ONLY_PREFIXES = ("/accounts/", "/admin/logout/")
SEARCHES = ("BRAVO", "bravo", "Bravo Secret", "LEAK-1", "Clinic Zeta")


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world()


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        data = b"".join(response.streaming_content)
        return data
    return response.content


def leaks(world: World, url: str, response) -> list[str]:
    body = body_of(response)
    text = body.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.items())
    asked = unquote(url)
    found = [m for m in world.markers if m and m in text and m not in asked]
    found += ["study B's export file" for content in world.b_files if content and content in body]
    return found


def hostile_payload(world: World, model: type[models.Model] | None) -> dict:
    """A form post that points every relation at study B's objects."""
    data = {
        "post": "yes", "confirm": "yes", "_save": "Save", "email": "sweep@example.org", "role": "coordinator",
        "format": "csv", "note": "sweep", "new_client_secret": "sweep-secret", "timezone": "UTC",
        "start": "1", "signature": "Sweep", "keep_data": "keep", "userid": "1",
    }  # fmt: skip
    if model is None:
        return data
    for field in model._meta.concrete_model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.is_relation:
            related = field.related_model._meta.concrete_model
            if related in world.b:
                data[field.name] = str(world.b[related].pk)
        elif field.choices:
            data[field.name] = str(field.choices[0][0])
        elif isinstance(field, models.DateTimeField):
            data.update(
                {
                    field.name: "2030-01-01 00:00:00",
                    f"{field.name}_0": "2030-01-01",
                    f"{field.name}_1": "00:00",
                }
            )
        elif isinstance(field, models.DateField):
            data[field.name] = "2030-01-01"
        elif isinstance(field, models.TimeField):
            data[field.name] = "08:00"
        elif isinstance(field, models.BooleanField):
            data[field.name] = "on"
        elif isinstance(field, models.IntegerField | models.DecimalField | models.FloatField):
            data[field.name] = "1"
        elif isinstance(field, models.JSONField):
            data[field.name] = "{}"
        elif isinstance(field, models.CharField | models.TextField) and field.name not in data:
            data[field.name] = "SWEEP-1"
    return data


def changelist_requests(world: World) -> list[tuple[str, str, dict | None]]:
    """(method, url, data) for every admin changelist: searches, B-id filters, actions on B's ids."""
    requests = []
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        b_obj = world.b_object(model)
        queries = [{"q": q} for q in SEARCHES]
        for field in model._meta.concrete_model._meta.concrete_fields:
            if field.is_relation and field.related_model._meta.concrete_model in world.b:
                target = world.b[field.related_model._meta.concrete_model]
                queries += [{f"{field.name}__id__exact": target.pk}, {f"{field.name}__exact": target.pk}]
        study_path = (getattr(model, "TENANT_PATHS", None) or (None,))[0]
        if study_path and study_path != "pk":
            queries.append({f"{study_path}__id__exact": world.study_b.pk})
        queries += [{"id__exact": b_obj.pk}, {"pk": b_obj.pk}]
        requests += [("get", f"{url}?{urlencode(q)}", None) for q in queries]
        for _func, name, _desc in model_admin._get_base_actions():
            data = {
                "action": name,
                "_selected_action": [b_obj.pk],
                "index": "0",
                "post": "yes",
                "confirm": "yes",
            }
            requests.append(("post", url, data))
    return requests


def sweep_role(client, world: World, user) -> tuple[list[str], int]:
    problems: list[str] = []
    count = 0

    def check(method: str, url: str, data: dict | None = None) -> None:
        nonlocal count
        count += 1
        response = client.post(url, data or {}) if method == "post" else client.get(url)
        assert response.status_code < 500, f"{method.upper()} {url} answered {response.status_code}"
        problems.extend(f"{method.upper()} {url}: {m}" for m in leaks(world, url, response))
        if method == "post" and "_auth_user_id" not in client.session:
            client.force_login(user)

    for endpoint in endpoints():
        for url in concrete_urls(world, endpoint):
            check("get", url)
            if not url.startswith(READ_ONLY_PREFIXES):
                check("post", url, hostile_payload(world, endpoint.model))
    for method, url, data in changelist_requests(world):
        check(method, url, data)
    return problems, count


@pytest.mark.parametrize("role", ROLES)
def test_no_role_of_study_a_reaches_anything_of_study_b(client, world, role):
    user = world.users[role]
    before = study_b_rows(world)
    assert len(before) >= 20
    client.force_login(user)
    problems, count = sweep_role(client, world, user)
    assert count > 300
    assert problems == []
    after = study_b_rows(world)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"study B rows changed or added by {role}: {changed}"
    job = world.b_object(ExportJob)
    assert export_job_path(job).read_bytes() == world.b_files[0]
    # Positive control: the sweep ran signed in, and A's staff still see A's own data.
    if role != "no_membership":
        listing = client.get(reverse("admin:cohorts_participant_changelist"))
        assert listing.status_code == 200
        assert "ALPHA-LEAK-1" in listing.content.decode()


def test_every_tenant_model_and_admin_model_has_a_study_b_object(world):
    from tests.security.world import tenant_models

    for model in [*tenant_models(), *admin.site._registry]:
        world.b_object(model)  # fails loudly with the model's name


def test_every_url_pattern_is_understood_by_the_sweep(world):
    seen = endpoints()
    assert len(seen) > 100
    assert any(e.route.startswith("admin/measurements/exportjob/") and "download" in e.route for e in seen)
    for endpoint in seen:
        assert list(concrete_urls(world, endpoint)), endpoint.route


def test_staff_without_two_factor_reach_no_admin_page(client, world):
    """2FA is enforced on every admin URL the sweep finds, not only the index."""
    from tests.factories import MembershipFactory, UserFactory

    user = MembershipFactory(study=world.study_a, user=UserFactory(totp=False)).user
    client.force_login(user)
    for endpoint in endpoints():
        if not endpoint.is_admin or endpoint.route.startswith(("admin/login/", "admin/logout/")):
            continue
        for url in concrete_urls(world, endpoint):
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"] == reverse("mfa_activate_totp"), url
    assert Participant.objects.filter(study=world.study_b).count() == 2
