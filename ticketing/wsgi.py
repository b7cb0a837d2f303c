"""The WSGI application, without the process's environment in each request.

Granian (the production server), like wsgiref behind `runserver`, copies the process's
environment into every request's environ, so request.META would carry DATABASE_URL,
SECRET_KEY and the payment API secret: into error reports, or anything that logs META.
Those keys are dropped before Django sees the request; the request's own (HTTP headers,
the CGI variables, wsgi.*) are the server's to set and are kept.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

# Set by the server per request; never taken from the process environment.
CGI_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "GATEWAY_INTERFACE",
        "HTTPS",
    }
)


def without_process_environment(app, environment):
    """`app`, called with environs from which the entries of `environment` (the
    process's variables, as read at start) are removed; a request's own value under
    the same name (a header that happens to be called so) is kept."""
    process = {key: value for key, value in environment.items() if key not in CGI_KEYS}

    def application(environ, start_response):
        for key in process.keys() & environ.keys():
            if environ[key] == process[key]:
                del environ[key]
        return app(environ, start_response)

    return application


# After Django's setup, which may have added a local .env to the environment.
application = without_process_environment(get_wsgi_application(), dict(os.environ))
