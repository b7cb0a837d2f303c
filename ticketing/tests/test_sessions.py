"""Signed-in pages keep working from the database when the session cache is down."""

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sessions-test"}}


@override_settings(SESSION_ENGINE="ticketing.sessions", CACHES=LOCAL_CACHE)
def test_a_signed_in_page_is_served_from_the_database_while_the_cache_is_down(client, alice, monkeypatch):
    client.force_login(alice)
    assert alice.email in client.get("/my/").content.decode()  # warm: read from the cache

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(caches["default"], "get", down)
    monkeypatch.setattr(caches["default"], "set", down)

    response = client.get("/my/")
    assert response.status_code == 200
    assert alice.email in response.content.decode()


@override_settings(SESSION_ENGINE="ticketing.sessions", CACHES=LOCAL_CACHE)
def test_the_session_is_read_from_the_cache_when_it_is_there(client, alice, django_assert_num_queries):
    client.force_login(alice)
    client.get("/my/")

    with CaptureQueriesContext(connection) as queries:
        client.get("/my/")
    assert queries.captured_queries  # the page did query (the user, at least)
    assert not any(Session._meta.db_table in q["sql"] for q in queries.captured_queries)


@override_settings(SESSION_ENGINE="ticketing.sessions", CACHES=LOCAL_CACHE)
def test_signing_in_works_while_the_cache_is_down(client, alice, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    for method in ("get", "set", "has_key"):
        monkeypatch.setattr(caches["default"], method, down)

    client.force_login(alice)  # a new session: its key is checked for clashes first
    response = client.get("/my/")
    assert response.status_code == 200
    assert alice.email in response.content.decode()
