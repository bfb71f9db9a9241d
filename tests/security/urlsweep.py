"""Enumerate every URL pattern of the project and turn each into concrete requests.

Values for path parameters come from `PARAMETERS`, keyed by parameter name. A pattern with a
parameter the sweep does not know makes the sweep fail: whoever adds such a URL teaches the sweep
what a study-B value for it is — so new URLs are covered without anyone remembering to.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from cohorts.models import Participant
from measurements.models import ExportJob
from tests.security.world import World

ADMIN_PREFIX = "admin/"
KNOWN_CONVERTERS = {"int", "str", "slug", "path", "uuid"}


@dataclass(frozen=True)
class Endpoint:
    route: str  # the full pattern, e.g. "admin/cohorts/participant/<path:object_id>/change/"
    name: str | None
    params: tuple[str, ...]
    model: type[Model] | None  # the admin model a route under admin/<app>/<model>/ belongs to

    @property
    def is_admin(self) -> bool:
        return self.route.startswith(ADMIN_PREFIX)


def _params(pattern) -> list[tuple[str, str]]:
    if isinstance(pattern, RoutePattern):
        found = re.findall(r"<(?:(\w+):)?(\w+)>", pattern._route)
        return [(conv or "str", name) for conv, name in found]
    if isinstance(pattern, RegexPattern):
        return [("regex", name) for name in re.compile(pattern._regex).groupindex]
    raise AssertionError(f"unknown URL pattern type {type(pattern).__name__}: teach the sweep")


def _admin_model(route: str) -> type[Model] | None:
    for model in admin.site._registry:
        if route.startswith(f"{ADMIN_PREFIX}{model._meta.app_label}/{model._meta.model_name}/"):
            return model
    return None


def endpoints() -> list[Endpoint]:
    found: list[Endpoint] = []

    def walk(patterns, prefix: str, params: list[tuple[str, str]]) -> None:
        for entry in patterns:
            here = params + _params(entry.pattern)
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route, here)
            elif isinstance(entry, URLPattern):
                for converter, _name in here:
                    assert converter in KNOWN_CONVERTERS | {"regex"}, (
                        f"{route}: unknown converter {converter}"
                    )
                found.append(Endpoint(route, entry.name, tuple(n for _c, n in here), _admin_model(route)))

    walk(get_resolver().url_patterns, "", [])
    return found


def _object_ids(world: World, endpoint: Endpoint) -> list[str]:
    if endpoint.model is None:
        raise AssertionError(f"{endpoint.route}: an object id outside an admin model: teach the sweep")
    return [str(world.b_object(endpoint.model).pk)]


def _slug(world: World, endpoint: Endpoint) -> list[str]:
    return [world.study_b.slug]


def _token(world: World, endpoint: Endpoint) -> list[str]:
    """Participant-page tokens are bearer secrets that A's staff do not hold: try guesses and B's ids."""
    participant = world.b_object(Participant)
    return [secrets.token_urlsafe(32), str(participant.pk), participant.code]


def _participant_id(world: World, endpoint: Endpoint) -> list[str]:
    return [str(world.b_object(Participant).pk)]


def _secret(world: World, endpoint: Endpoint) -> list[str]:
    return [secrets.token_hex(20)]


def _content_type(world: World, endpoint: Endpoint) -> list[str]:
    return [str(ContentType.objects.get_for_model(Participant).pk)]


def _view_on_site_object(world: World, endpoint: Endpoint) -> list[str]:
    return [str(world.b_object(Participant).pk)]


def _app_label(world: World, endpoint: Endpoint) -> list[str]:
    return sorted({m._meta.app_label for m in admin.site._registry})


def _catch_all(world: World, endpoint: Endpoint) -> list[str]:
    return [f"cohorts/participant/{world.b_object(Participant).pk}/nowhere/"]


def _export_uuid(world: World, endpoint: Endpoint) -> list[str]:
    return [str(world.b_object(ExportJob).uuid)]


def _garbage(world: World, endpoint: Endpoint) -> list[str]:
    return ["3x", "zz"]


PARAMETERS: dict[str, Callable[[World, Endpoint], list[str]]] = {
    "object_id": _object_ids,  # admin change/delete/history: B's object of that admin's model
    "pk": _object_ids,  # our admin extras (export progress/download, CSV import, acknowledge)
    "id": _object_ids,  # UserAdmin's password page
    "slug": _slug,  # export page, monitoring study page, open enrollment
    "participant_id": _participant_id,  # one-off message page
    "token": _token,
    "secret": _secret,
    "content_type_id": _content_type,
    "app_label": _app_label,
    "url": _catch_all,
    "key": _garbage,  # allauth e-mail confirmation / password reset keys
    "uidb36": _garbage,
    "uuid": _export_uuid,  # the API's export status and file
}


def _fill(route: str, values: dict[str, str]) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], path)
    return "/" + path.replace("^", "").replace("$", "")


def concrete_urls(world: World, endpoint: Endpoint) -> Iterator[str]:
    choices: dict[str, list[str]] = {}
    for name in endpoint.params:
        if name not in PARAMETERS:
            raise AssertionError(
                f"URL {endpoint.route!r} has a parameter {name!r} the isolation sweep does not know: add "
                "to tests/security/urlsweep.py PARAMETERS what a study-B value for it is."
            )
        if endpoint.route.startswith("admin/r/") and name == "object_id":
            choices[name] = _view_on_site_object(world, endpoint)
        else:
            choices[name] = PARAMETERS[name](world, endpoint)
    combos: list[dict[str, str]] = [{}]
    for name, options in choices.items():
        combos = [{**c, name: option} for c in combos for option in options]
    for combo in combos:
        yield _fill(endpoint.route, combo)
