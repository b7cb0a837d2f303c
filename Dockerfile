# syntax=docker/dockerfile:1
# Ticketing: Django + Granian image; the same image runs the Celery worker and beat.
# Needs BuildKit (default since Docker 23) for the wheel bind-mount below.

# ---- builder: build every wheel, including mysqlclient (C extension) -----------------
FROM python:3.11-slim-bookworm AS builder

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build
COPY requirements.txt requirements-mysql.txt requirements-nodeps.txt ./
# requirements-nodeps.txt: iamport-rest-client without its pin of an old, vulnerable requests.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt -r requirements-mysql.txt \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements-nodeps.txt

# ---- runtime: no compiler, only the MariaDB client library mysqlclient links to ------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=ticketing.settings \
    MEDIA_ROOT=/app/media \
    GRANIAN_INTERFACE=wsgi \
    GRANIAN_HOST=0.0.0.0 \
    GRANIAN_PORT=8000 \
    GRANIAN_WORKERS=2 \
    GRANIAN_BLOCKING_THREADS=4 \
    GRANIAN_LOG_ACCESS_ENABLED=1 \
    GRANIAN_RESPAWN_FAILED_WORKERS=1 \
    GRANIAN_WORKERS_KILL_TIMEOUT=30

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin app

WORKDIR /app
COPY requirements.txt requirements-mysql.txt requirements-nodeps.txt ./
# Wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r requirements.txt -r requirements-mysql.txt \
 && pip install --no-index --no-deps --find-links=/wheels -r requirements-nodeps.txt

COPY . .
# Build-time only: DEBUG=0 selects the hashed/compressed whitenoise storage, and
# settings refuse DEBUG=0 without SECRET_KEY/ALLOWED_HOSTS/IAMPORT_API_*. These values are not
# kept in the image; real ones come from the environment at run time.
# pybabel skips (exit 0) a catalog whose header is "#, fuzzy", so check every .po got a .mo.
# Code and static files stay root-owned (read-only to the app); only media is writable.
RUN pybabel compile -d locale -D django \
 && for po in locale/*/LC_MESSAGES/django.po; do \
      test -f "${po%.po}.mo" || { echo "not compiled: $po" >&2; exit 1; }; \
    done \
 && DEBUG=0 SECRET_KEY=build-only ALLOWED_HOSTS=localhost IAMPORT_API_KEY=build-only IAMPORT_API_SECRET=build-only \
      python manage.py collectstatic --noinput \
 && install -d -o app -g app /app/media \
 && chmod 0755 docker/entrypoint.sh

USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
# Exec form so Granian is PID 1 and gets SIGTERM (it lets requests finish, then stops).
# It reads the GRANIAN_* variables above: one worker process per core (GRANIAN_WORKERS,
# set it to the container's cores), each running Django in GRANIAN_BLOCKING_THREADS
# threads so one request's database wait does not idle the core. The HTTP work is in
# Rust, about 1 ms of CPU less per request than gunicorn's sync workers here
# (docs/benchmarks.md, "Web server").
CMD ["granian", "ticketing.wsgi:application"]
