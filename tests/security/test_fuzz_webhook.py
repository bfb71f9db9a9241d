"""Fuzzing the notification webhook: any form fields, values or raw bytes → 200/400/404/405, never a
500, and an invalid delivery (bad secret, no numeric userid) writes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from withings.models import Notification
from withings.services.notifications import KNOWN_KEYS, notify_secret

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
values = st.one_of(
    st.text(max_size=80),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "0", "-1", "1e9", "NaN", "١٢٣", "１２３", "4" * 70, "12\x00", " 12 ", "0x1f"]),
)
fields = st.dictionaries(st.sampled_from([*KNOWN_KEYS, "extra", "userid[]", ""]), values, max_size=8)


def url(secret: str | None = None) -> str:
    return reverse("withings_notify", args=[secret or notify_secret()])


@FUZZ
@given(data=fields, method=st.sampled_from(["post", "put", "delete", "patch", "options"]))
def test_any_form_never_errors_and_invalid_input_writes_nothing(client, data, method):
    before = Notification.objects.count()
    response = getattr(client, method)(url(), data) if method == "post" else getattr(client, method)(url())
    assert response.status_code in (200, 400, 404, 405)
    userid = data.get("userid", "")
    valid = method == "post" and userid[:64].isdigit() and userid.isascii()
    if not valid:
        assert Notification.objects.count() == before
    if response.status_code != 200:
        assert Notification.objects.count() == before


@FUZZ
@given(body=st.binary(max_size=2000), content_type=st.sampled_from([
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "application/json",
    "text/plain", "application/x-www-form-urlencoded; charset=utf-16",
]))  # fmt: skip
def test_raw_bytes_never_error(client, body, content_type):
    before = Notification.objects.count()
    response = client.generic("POST", url(), body, content_type=content_type)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert Notification.objects.count() == before


@FUZZ
@given(secret=st.text(min_size=1, max_size=60).filter(lambda s: "/" not in s and s.strip() == s), data=fields)
def test_a_wrong_secret_writes_nothing(client, secret, data):
    from django.urls import NoReverseMatch

    try:
        target = url(secret)
    except NoReverseMatch:
        return
    response = client.post(target, data)
    assert response.status_code == (200 if secret == notify_secret() else 404)
    if secret != notify_secret():
        assert Notification.objects.count() == 0
