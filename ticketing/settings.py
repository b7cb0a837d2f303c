"""Ticketing settings: one file, driven by the environment.

Every value has a safe development default so that `make run` works with no
configuration at all (SQLite, eager Celery, console email). Production sets
DEBUG=0 and must then provide SECRET_KEY and ALLOWED_HOSTS; see README.md for the
full table of variables.
"""

import datetime as dt
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is convenient for developers; the environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=True)

if DEBUG:
    SECRET_KEY = _secret("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
else:
    # No defaults in production: a missing secret must stop the process, not run
    # it with a key that is published in this repository.
    SECRET_KEY = _secret("SECRET_KEY")
    if not SECRET_KEY:
        raise environ.ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG=0")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.kakao",
    "allauth.socialaccount.providers.naver",
    "allauth.socialaccount.providers.google",
    "accounts",
    "events",
    "reservations",
    "payments",
    "notifications",
    # Celery beat's schedule lives in the database, edited by staff in the admin.
    "django_celery_beat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "ticketing.urls"
WSGI_APPLICATION = "ticketing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
_engine = DATABASES["default"]["ENGINE"]
if "mysql" in _engine:
    if _engine == "django.db.backends.mysql":
        # Django's backend, with transactions begun in one statement (ticketing/mysql/base.py).
        DATABASES["default"]["ENGINE"] = "ticketing.mysql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # READ COMMITTED: a seat released by another transaction is visible to the
            # next conditional UPDATE at once, and gap locks (a deadlock source under
            # REPEATABLE READ) are not taken for our range scans.
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif "sqlite" in _engine:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Writers take the lock when the transaction begins, so two requests never
            # both read then collide on upgrade (SQLite's "database is locked").
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file, not shared-cache memory: the concurrency tests open one
    # connection per thread, and only a file gives them real SQLite locking. One file
    # per process, so parallel test runs never share (and corrupt) a database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"ticketing-test-{os.getpid()}.sqlite3")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if DEBUG else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery ---------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    _cache_url = REDIS_URL
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Parallel test workers each get their own Redis database, so one worker's
        # cache.clear() never wipes another's rate-limit counters mid-test.
        _worker = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw") or 0)
        _cache_url = urlsplit(REDIS_URL)._replace(path=f"/{1 + _worker}").geturl()
    CACHES = {
        "default": {
            "BACKEND": "ticketing.cache.RedisCache",
            "LOCATION": _cache_url,
            # An unreachable Redis costs a request a second at most, never a hung worker.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    # Sessions are read on every request: from Redis, with the database behind it so a
    # Redis restart signs nobody out and an outage falls back to the database. Only
    # with a shared cache: a per-process cache would keep serving a session another
    # process had ended.
    SESSION_ENGINE = "ticketing.sessions"
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
    # With no broker, tasks run in-process so the embedded start needs no servers.
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "Asia/Seoul"
# JSON only: a pickle payload from anyone who can write to Redis would be code execution.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Nothing reads task results; tasks record what they did in the database.
CELERY_TASK_IGNORE_RESULT = True
# Every task is idempotent (sweeps, the payment sync, notification sends that claim
# their row first), so a task is acknowledged only when it has finished, and one whose
# worker died is put back on the queue rather than lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # with late acks, do not hoard tasks a free worker could run
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
# Two queues: hold expiry and payments on "default", email on "email", each with its
# own workers (compose.yaml), so a slow mail server never delays releasing seats.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"notifications.tasks.*": {"queue": "email"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis hands an unacknowledged task to another worker after this long. It must
    # exceed the longest retry countdown (notifications back off up to 16 minutes),
    # or a task waiting for its retry would be delivered twice.
    "visibility_timeout": 3600,
    "socket_connect_timeout": 3,
}
# A request that queues a task while Redis is down gives up quickly (and logs it:
# ticketing.celery.enqueue); the periodic jobs pick up what the task would have done.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# The schedule is django-celery-beat's, in the database: the defaults are created by
# the migration notifications/migrations/0002_default_beat_schedule.py and staff edit
# them in the admin (Periodic tasks).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Auth ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # The admin's own login form.
    "accounts.backends.ModelBackend",
    # allauth: email + password, and Kakao / Naver / Google (its views enforce verification).
    "accounts.backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-allauth: customers sign in with email + password or Kakao, Naver, Google.
# Django rotates the session key on every login (session fixation); keep it that way.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
# Both sign-up forms carry the required consent boxes (terms, privacy, 14 or older).
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm", "signup": "accounts.forms.SignupForm"}
SOCIALACCOUNT_FORMS = {"signup": "accounts.forms.SocialSignupForm"}
# A first Kakao/Naver/Google sign-in shows that form before the account is made;
# automatic sign-up would create it without the consents. Existing accounts, and
# those a verified provider address signs into, are not asked.
SOCIALACCOUNT_AUTO_SIGNUP = False
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
# Sign-up, login and password reset answer alike whether or not an address is
# registered; the owner of a registered address gets an email instead.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Links in emails and OAuth callback URLs use the scheme of the public URL.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = SITE_URL.partition("://")[0] or "http"
# allauth's defaults, spelled out so a reader sees them. Counters live in the
# cache: Redis in production (shared by every worker), local memory otherwise.
ACCOUNT_RATE_LIMITS = {
    "change_password": "5/m/user",
    "change_phone": "1/m/user",
    "manage_email": "10/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "login": "30/m/ip",
    "request_login_code": "20/m/ip,3/m/key",
    # Failed logins: 10 a minute per IP, 5 per 5 minutes per email address.
    "login_failed": "10/m/ip,5/300s/key",
    # One verification email per address every 3 minutes.
    "confirm_email": "1/180s/key",
    "verify_phone": "1/30s/key,3/m/ip",
}

# Logging into an existing account because a provider vouches for its email is
# only safe with providers that verify addresses (allauth's default is off). Kakao
# reports `is_email_verified` and Google `email_verified`, and allauth honours
# both; Naver reports no such flag, so a Naver login with an already registered
# address creates nothing and only emails that address's owner.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # turned on per provider below
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_PROVIDERS = {
    "kakao": {"SCOPE": ["profile_nickname", "account_email"], "EMAIL_AUTHENTICATION": True},
    "naver": {},
    "google": {
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "OAUTH_PKCE_ENABLED": True,
        "EMAIL_AUTHENTICATION": True,
    },
}
# A provider's button shows only when it has an app: from these variables, or a
# "Social application" row in the admin (use one or the other, not both).
for _provider in SOCIALACCOUNT_PROVIDERS:
    _client_id = env.str(f"{_provider.upper()}_CLIENT_ID", default="")
    if _client_id:
        _client_secret = _secret(f"{_provider.upper()}_CLIENT_SECRET", "") or ""
        SOCIALACCOUNT_PROVIDERS[_provider]["APPS"] = [{"client_id": _client_id, "secret": _client_secret, "key": ""}]

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Email --------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Ticketing <no-reply@ticketing.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds before an unresponsive mail server counts as down (the send is retried later).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- Security (production) ----------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Ticketing ----------------------------------------------------------------
# Events may override these per event; they are the defaults new events start with.
TICKETING_DEFAULT_TICKET_LIMIT = env.int("TICKETING_DEFAULT_TICKET_LIMIT", default=4)
# How long an event page's "seats left" counts are reused (0: count on every view). The
# seat map and holds always read the live inventory.
TICKETING_EVENT_FREE_COUNTS_SECONDS = env.int("TICKETING_EVENT_FREE_COUNTS_SECONDS", default=5)
# How long each process keeps a performance's seat map places (labels, positions,
# grades; never whether they are free). Staff edits to seats show within this time.
TICKETING_SEAT_MAP_PLACES_SECONDS = env.int("TICKETING_SEAT_MAP_PLACES_SECONDS", default=60)
# How long each process keeps the row of a performance being held (and its event), read
# on every hold and waiting-room visit. Staff edits reach holds within this time.
TICKETING_PERFORMANCE_SECONDS = env.int("TICKETING_PERFORMANCE_SECONDS", default=1)


def _durations(name: str, default: str) -> tuple[dt.timedelta, ...]:
    """Durations like "24h,3h,30m,2d" as timedeltas, longest first; a typo stops the process."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    values = []
    for part in env.str(name, default=default).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if len(part) < 2 or part[-1] not in units or not part[:-1].isdigit() or int(part[:-1]) == 0:
            raise environ.ImproperlyConfigured(f'{name}: "{part}" is not a duration like 24h, 90m or 2d')
        values.append(dt.timedelta(**{units[part[-1]]: int(part[:-1])}))
    return tuple(sorted(set(values), reverse=True))


# When customers with an unpaid booking (a virtual account awaiting deposit, or any
# hold with a long deadline) are reminded, before the deadline. Only offsets that were
# still ahead when the booking was made are used.
TICKETING_PAYMENT_REMINDER_OFFSETS = _durations("TICKETING_PAYMENT_REMINDER_OFFSETS", "24h,3h")

# --- Payments: I'mport (PortOne V1) -------------------------------------------------
# Development talks to the local fake server (`python -m payments.fake_iamport`, which
# `make run` starts on port 8765) with its default credentials; production talks to
# the real API and must be given real credentials.
if DEBUG:
    IAMPORT_API_URL = env.str("IAMPORT_API_URL", default="http://127.0.0.1:8765/")
    IAMPORT_API_KEY = _secret("IAMPORT_API_KEY", "fake-key")
    IAMPORT_API_SECRET = _secret("IAMPORT_API_SECRET", "fake-secret")
    IAMPORT_JS_SDK_URL = env.str("IAMPORT_JS_SDK_URL", default="http://127.0.0.1:8765/__fake__/iamport.js")
else:
    IAMPORT_API_URL = env.str("IAMPORT_API_URL", default="https://api.iamport.kr/")
    IAMPORT_API_KEY = _secret("IAMPORT_API_KEY")
    IAMPORT_API_SECRET = _secret("IAMPORT_API_SECRET")
    if not (IAMPORT_API_KEY and IAMPORT_API_SECRET):
        raise environ.ImproperlyConfigured(
            "IAMPORT_API_KEY and IAMPORT_API_SECRET (or their *_FILE variants) are required when DEBUG=0"
        )
    IAMPORT_JS_SDK_URL = env.str("IAMPORT_JS_SDK_URL", default="https://cdn.iamport.kr/v1/iamport.js")
# The client builds URLs by appending to this, so it must end with "/".
IAMPORT_API_URL = IAMPORT_API_URL.rstrip("/") + "/"
IAMPORT_MERCHANT_CODE = env.str("IAMPORT_MERCHANT_CODE", default="imp00000000")  # 고객사 식별코드, for IMP.init()
IAMPORT_PG = env.str("IAMPORT_PG", default="html5_inicis")  # `pg` for IMP.request_pay()
# The client library sets no timeout at all; without these a stalled API hangs a worker.
IAMPORT_CONNECT_TIMEOUT = env.float("IAMPORT_CONNECT_TIMEOUT", default=3.0)
IAMPORT_READ_TIMEOUT = env.float("IAMPORT_READ_TIMEOUT", default=10.0)
