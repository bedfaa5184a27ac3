"""Conduit settings: everything comes from the environment (django-environ).

Development defaults are safe and need no services; production differs only by
environment variables (see README, "Production settings").
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The development key is deliberately marked insecure: `check --deploy` refuses it.
SECRET_KEY = env("SECRET_KEY", default="django-insecure-conduit-development-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.ConduitAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "auditlog",
    "tenants",
    "actions",
    "journeys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Which door a change came through (admin or API) and who made it, for the audit trail.
    "tenants.audit.context.AuditDoorMiddleware",
    "tenants.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.views.admin_context",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'conduit.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file at once: WAL lets readers go on while
    # one writes, IMMEDIATE takes the write lock up front (no upgrade deadlock),
    # and the timeout makes a writer wait instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that worker processes started by the tests share it.
    # Per test process, so that concurrent test runs on one machine do not share it; in the system's
    # temporary folder, so that tests write nothing into the checkout.
    test_database = str(Path(tempfile.gettempdir()) / f"conduit-test-{os.getpid()}.sqlite3")
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", test_database)
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by web, workers and beat (tokens, throttles), unlike a per-process memory cache.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "conduit_cache"}}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling: after 5 failures for one username from one address, 15 minutes off.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# The client address of a login: the socket's peer unless it is one of these proxies (IPs or CIDRs),
# then the right-most X-Forwarded-For address no listed proxy wrote. Lockouts and DRF throttles both use it.
CONDUIT_TRUSTED_PROXIES = env.list("CONDUIT_TRUSTED_PROXIES", default=[])
AXES_CLIENT_IP_CALLABLE = "tenants.throttling.client_address"
# A user token (POST /api/v1/auth/token/) works this long after it is issued; logout and a new password end it.
CONDUIT_USER_TOKEN_TTL_S = env.int("CONDUIT_USER_TOKEN_TTL_S", default=7 * 24 * 3600)
# An invitation to join an organization can be accepted this long after it is sent.
CONDUIT_INVITATION_TTL_S = env.int("CONDUIT_INVITATION_TTL_S", default=7 * 24 * 3600)

# English and French (issue 18): the browser's Accept-Language, else the language a user chose in the
# admin header (kept on the user); API clients send Accept-Language. Catalogues are under locale/,
# compiled by `make` at install (pybabel: no GNU gettext needed to run).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# HTTPS hardening is switched on by environment in production (README lists the variables).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_HTTPS_PROXY", default=False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The first class names the WWW-Authenticate header, so anonymous gets 401.
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.common.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.common.pagination.Pagination",
    # OPTIONS answers 405: the schema documents every operation (fuzzing found 500s from DRF's metadata).
    "DEFAULT_METADATA_CLASS": None,
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.common.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": env("LOGIN_THROTTLE_RATE", default="10/min")},
    # A throttle that does not count by tenants.throttling's address falls back to the socket, never the raw
    # X-Forwarded-For a client can rotate (DRF's default with NUM_PROXIES unset).
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Conduit API",
    "DESCRIPTION": "Custom actions and customer journeys. Organization-scoped resources "
    "live under /api/v1/orgs/{org_slug}/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status`; each choice set gets its own name instead of a numbered one.
    "ENUM_NAME_OVERRIDES": {"InvitationStatusEnum": "tenants.models.Invitation.Status"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
        "config.schema.tag_and_summarize",
    ],
}

# Celery: the database is the truth, the broker only wakes workers (SPEC section 8).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_FOLDER = BASE_DIR / env("CELERY_BROKER_FOLDER", default="var/broker").format(pid=os.getpid())
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's Django fixup closes the database connection around every task unless this is set: a worker
# then connected anew for each wake-up message (16 ms each, most of a message whose rows another loop
# had sent). Connections live as between requests instead (CONN_MAX_AGE, health checks; config/celery.py).
CELERY_DB_REUSE_MAX = 2**62
# Audience ticks have a queue of their own: a worker started without -Q takes both queues (one command is
# enough), and a worker line on `audiences` alone keeps the entry rate while the others drain calls.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("audiences"))
CELERY_TASK_ROUTES = {"journeys.enter_audiences": {"queue": "audiences"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # urllib3 logs each request line at DEBUG, and a URL may hold a secret value or an API key.
    "loggers": {"axes": {"level": "WARNING"}, "urllib3": {"level": "INFO"}},
}

# The audit trail (tenants/audit): django-auditlog writes into our organization-scoped record, values as JSON,
# foreign keys by name; a secret field is recorded only as "changed" (the mask below, then tenants.audit).
AUDITLOG_LOGENTRY_MODEL = "tenants.AuditRecord"
# Our record model replaces django-auditlog's own (swapped out), so its migrations would only make an unused
# table, whose foreign key to users stops PostgreSQL's TRUNCATE of them (the tests' flush): not migrated.
MIGRATION_MODULES = {"auditlog": None}
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_USE_FK_STRING_REPRESENTATION = True
AUDITLOG_DISABLE_REMOTE_ADDR = True
AUDITLOG_MASK_CALLABLE = "tenants.audit.registry.hidden"

# Keys for encrypted fields (comma-separated Fernet keys, the first one encrypts).
# `make run` writes a development key into .env; production sets its own.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# dumpdata writes encrypted fields as ciphertext; these formats read such a dump back (config/serialization).
SERIALIZATION_MODULES = {name: f"config.serialization.{name}" for name in ("json", "jsonl", "python", "xml", "yaml")}

# Outbound safety (SPEC section 2): private networks actions may call, and the response body cap.
CONDUIT_ALLOWED_PRIVATE_NETWORKS = env.list("CONDUIT_ALLOWED_PRIVATE_NETWORKS", default=[])
CONDUIT_MAX_RESPONSE_BYTES = 1024 * 1024
CONDUIT_DEMO_KEY_FILE = BASE_DIR / "var" / "demo-api-key"  # seed_demo keeps the demo API key here (development)
CONDUIT_DEMO_RECEIVER_PORT = env.int("CONDUIT_DEMO_RECEIVER_PORT", default=8025)  # make run: the demo action calls it
CONDUIT_DEMO_SMTP_PORT = env.int("CONDUIT_DEMO_SMTP_PORT", default=8026)  # make run: the demo receiver's SMTP server

# Invocations (SPEC sections 2, 3, 8). Seconds unless named otherwise.
CONDUIT_RETRY_BASE_S = env.float("CONDUIT_RETRY_BASE_S", default=1.0)  # first backoff; doubles per attempt
CONDUIT_RETRY_MAX_S = env.float("CONDUIT_RETRY_MAX_S", default=300.0)
# A worker's loop of calls claims for this long, then lets its calls end and takes its next task. Each
# end costs one provider latency with fewer calls open (at 300 ms, 5 s gave 973-1,141 calls/s, 15 s
# 972-1,249, five runs of seven above 1,100: README). Journey events and runs are handled meanwhile.
CONDUIT_BATCH_BUDGET_S = env.float("CONDUIT_BATCH_BUDGET_S", default=15.0)
# Journey expressions with loops (map, filter, all, exists) run in a child process under these limits;
# each organization's loops get CONDUIT_EXPRESSION_BUDGET_S per window in each worker process.
CONDUIT_EXPRESSION_TIME_LIMIT_MS = env.int("CONDUIT_EXPRESSION_TIME_LIMIT_MS", default=200)
CONDUIT_EXPRESSION_MEMORY_MB = env.int("CONDUIT_EXPRESSION_MEMORY_MB", default=256)
CONDUIT_EXPRESSION_BUDGET_S = env.float("CONDUIT_EXPRESSION_BUDGET_S", default=2.0)
CONDUIT_EXPRESSION_WINDOW_S = env.float("CONDUIT_EXPRESSION_WINDOW_S", default=10.0)
# Calls a worker process keeps open at once (on its event loop, or a thread each; see README, "Scaling").
CONDUIT_MAX_IN_FLIGHT = env.int("CONDUIT_MAX_IN_FLIGHT", default=400)
# Calls that need nothing blocking before they go are made on one event loop per worker (aiohttp)
# rather than a thread each: false sends every call from the thread pool.
CONDUIT_CALLS_ON_LOOP = env.bool("CONDUIT_CALLS_ON_LOOP", default=True)
CONDUIT_SMTP_CONNECTIONS = env.int("CONDUIT_SMTP_CONNECTIONS", default=4)  # per organization and worker process
CONDUIT_DEFAULT_MAX_CONCURRENT = 400  # calls open to one host at once across workers, where no endpoint limit says
# Added to every claim's lease: clock skew between workers and a slow commit.
CONDUIT_LEASE_MARGIN_S = env.float("CONDUIT_LEASE_MARGIN_S", default=10.0)
CONDUIT_COUNTDOWN_MAX_S = 60.0  # later wake-ups are left to the sweeper, never a long broker ETA
CONDUIT_SWEEP_INTERVAL_S = env.float("CONDUIT_SWEEP_INTERVAL_S", default=5.0)
CONDUIT_SWEEP_GRACE_S = env.float("CONDUIT_SWEEP_GRACE_S", default=15.0)  # a due row left this long: lost message
CONDUIT_DEFAULT_HOST_LIMIT = (300_000, 60)  # calls per seconds, per organization and host
CONDUIT_CIRCUIT_MIN_CALLS = env.int("CONDUIT_CIRCUIT_MIN_CALLS", default=50)
CONDUIT_CIRCUIT_FAILURE_RATIO = env.float("CONDUIT_CIRCUIT_FAILURE_RATIO", default=0.5)
CONDUIT_CIRCUIT_WINDOW_S = env.float("CONDUIT_CIRCUIT_WINDOW_S", default=60.0)
CONDUIT_CIRCUIT_COOLDOWN_S = env.float("CONDUIT_CIRCUIT_COOLDOWN_S", default=30.0)
CONDUIT_CIRCUIT_MAX_HOLD_S = env.float("CONDUIT_CIRCUIT_MAX_HOLD_S", default=300.0)  # then outcome circuit_open
