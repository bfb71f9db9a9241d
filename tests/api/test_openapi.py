"""The OpenAPI description is valid OpenAPI 3.1 and describes every route of /api/v1/."""

from __future__ import annotations

import re

from django.urls import get_resolver
from openapi_spec_validator import validate

from api import urls


def test_schema_is_valid_and_public(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["servers"] == [{"url": "http://testserver/api/v1"}]
    assert client.get("/api/v1/openapi.json").json() == document


def test_every_route_is_described(client):
    documented = set(client.get("/api/v1/schema/").json()["paths"])
    routes = {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(p.pattern))
        for p in urls.urlpatterns
        if p.name not in ("schema", "openapi")
    }
    assert routes == documented
    assert get_resolver().resolve("/api/v1/studies/").url_name == "studies"
