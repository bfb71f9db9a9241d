"""Every PostgreSQL session the portal opens runs with its session settings (core.dbsession)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections


def show_jit(conn) -> str:
    with conn.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_jit_is_off_in_every_new_session_including_other_threads():
    assert show_jit(connection) == "off"
    fresh = connections.create_connection("default")
    try:
        assert show_jit(fresh) == "off"
    finally:
        fresh.close()

    seen = []

    def in_a_thread():  # the CSV export copies on worker threads, each with its own connection
        try:
            seen.append(show_jit(connections["default"]))
        finally:
            connections.close_all()

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert seen == ["off"]
