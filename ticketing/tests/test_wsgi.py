"""Requests never carry the process's environment (secrets) in request.META."""

import io

from ticketing.wsgi import without_process_environment


def call(app, environ):
    statuses = []
    body = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
    return statuses[0], body


def request_environ(**extra):
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    return base | extra


def test_the_process_environment_is_dropped_and_the_request_kept():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b"ok"]

    process = {
        "DATABASE_URL": "mysql://ticketing:hunter2@db/ticketing",
        "SECRET_KEY": "s3cret",
        "HTTP_PROXY": "http://proxy.internal:3128",
        "SERVER_NAME": "container-name",  # a CGI name: the server's own value stays
    }
    wrapped = without_process_environment(app, process)
    # What Granian hands over: the process's variables merged under the request's.
    environ = process | request_environ(HTTP_X_REQUEST_ID="abc")

    assert call(wrapped, environ) == ("200 OK", b"ok")
    assert "DATABASE_URL" not in seen and "SECRET_KEY" not in seen and "HTTP_PROXY" not in seen
    assert seen["SERVER_NAME"] == "127.0.0.1" and seen["REMOTE_ADDR"] == "10.0.0.7"
    assert seen["HTTP_X_REQUEST_ID"] == "abc" and seen["HTTP_HOST"] == "127.0.0.1:8000"


def test_a_header_that_shares_a_name_with_a_variable_is_the_request_s():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    wrapped = without_process_environment(app, {"HTTP_PROXY": "http://proxy.internal:3128"})
    call(wrapped, request_environ(HTTP_PROXY="sent-by-the-client"))

    assert seen["HTTP_PROXY"] == "sent-by-the-client"


def test_the_site_s_application_drops_it(db, settings):
    """The real application: a request environ built as Granian builds it reaches
    Django without the process's variables (PATH, HOME, DJANGO_SETTINGS_MODULE...)."""
    import os

    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from ticketing import wsgi

    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    seen = {}

    def record(sender, environ, **kwargs):
        seen.update(environ)

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.connect(record)
    try:
        # Less pytest's per-test variable, which it sets after the process started.
        process = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
        status, _ = call(wsgi.application, process | request_environ())
    finally:
        request_started.disconnect(record)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)

    assert status.startswith(("200", "302"))
    leaked = {key for key in process if key not in wsgi.CGI_KEYS} & seen.keys()
    assert not leaked and "DJANGO_SETTINGS_MODULE" in process
    assert seen["HTTP_HOST"] == "127.0.0.1:8000"
