"""Base settings shared by every environment.

All configuration comes from the environment (django-environ) with working local defaults.
Integration-specific settings live in their own small modules (mqtt, chain, celery) and are
imported at the bottom of this file.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
APPS_DIR = BASE_DIR / "apps"

env = environ.Env()
# An optional, untracked .env file at the project root (never committed).
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _development_secret_key() -> str:
    """Generate a development key once into an untracked file (never committed)."""
    path = BASE_DIR / ".secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = env("SECRET_KEY", default=None) or _development_secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)

DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, never a CDN
    "channels",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "apps.accounts.axes_config.AxesConfig",  # django-axes, with a clear admin label
    "import_export",  # admin import (CSV/XLSX, through services) and changelist export
]
LOCAL_APPS = [
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.compliance",
    "apps.grid",
    "apps.meters",
    "apps.chain",
    "apps.market",
    "apps.incentives",
    "apps.billing",
    "apps.notifications",
    "apps.governance",
    "apps.portal",
    "apps.demo",  # last: the demo imports every app, no app imports it
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apps.accounts.middleware.StaffMFARequiredMiddleware",
    "apps.accounts.middleware.PasswordHashingBusyMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "apps.portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/energysphere"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Connections: every process borrows them from its own psycopg pool, bounded by DB_POOL_MAX_SIZE
# (README, Deployment: the arithmetic of all processes against PostgreSQL's max_connections).
# A request, task or message takes a connection for its duration and gives it back; the pool
# keeps DB_POOL_MIN_SIZE of them open, so a Celery worker reuses one backend across tasks. A
# request that finds the pool exhausted waits up to DB_POOL_TIMEOUT seconds for a connection.
# Django requires CONN_MAX_AGE = 0 with a pool. DB_POOL=false turns the pool off (a connection per
# request or task, or persistent for CONN_MAX_AGE seconds: for a PgBouncer in front of PostgreSQL).
DB_POOL = env.bool("DB_POOL", default=True)
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=1)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=8)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=30.0)
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# Names each process's connections in pg_stat_activity (make run sets one per process).
if env("DB_APPLICATION_NAME", default=""):
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = env("DB_APPLICATION_NAME")
# Read replica (apps/core/replica.py, docs/scaling.md "Concurrency"): with DATABASE_REPLICA_URL set,
# pages whose data the viewer cannot have just written read from the `replica` alias; everything
# else, and every write, uses `default`. The replica's sessions are read-only, and it has a pool
# of its own of at most DB_REPLICA_POOL_MAX_SIZE connections per process.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DB_REPLICA_POOL_MAX_SIZE = env.int("DB_REPLICA_POOL_MAX_SIZE", default=DB_POOL_MAX_SIZE)
DATABASE_ROUTERS = ["apps.core.replica.ReplicaRouter"]
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    replica_options = DATABASES["replica"].setdefault("OPTIONS", {})
    replica_options["options"] = "-c default_transaction_read_only=on"
    if DB_POOL:
        replica_options["pool"] = {
            "min_size": 0,
            "max_size": DB_REPLICA_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
    if env("DB_APPLICATION_NAME", default=""):
        replica_options["application_name"] = env("DB_APPLICATION_NAME")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="es"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env("CHANNEL_LAYER_PREFIX", default="es-asgi"),
        },
    }
}

# Sessions are read from the cache (Redis) and written through to the database: one query less on
# every request, and a session still survives a cache flush (docs/scaling.md, "Concurrency").
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out client before any password is checked (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Passwords (apps/accounts/hashers.py, SECURITY.md "Passwords"): Argon2id with OWASP's parameters
# (19 MiB, 2 passes, 1 lane); PBKDF2-SHA256 hashes stored earlier verify and are re-hashed with
# Argon2id at the next login. Neither holds a pooled database connection while it hashes.
PASSWORD_HASHERS = [
    "apps.accounts.hashers.CooperativeArgon2PasswordHasher",
    "apps.accounts.hashers.ReleasingPBKDF2PasswordHasher",
]
# At most this many password hashes at once per process, a login waiting longer than
# PASSWORD_HASH_WAIT_SECONDS for a slot is answered 503 + Retry-After (apps/accounts/hashers.py).
PASSWORD_HASH_CONCURRENCY = env.int("PASSWORD_HASH_CONCURRENCY", default=os.cpu_count() or 1)
PASSWORD_HASH_WAIT_SECONDS = env.float("PASSWORD_HASH_WAIT_SECONDS", default=10.0)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (apps/accounts/throttling.py): failures counted per client IP and e-mail.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_USERNAME_CALLABLE = "apps.accounts.throttling.login_username"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Failed logins are throttled by django-axes alone: allauth's own per-e-mail limit would let
# anyone lock a member out by failing five times with their address.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: login by email, no username.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ALLOW_REGISTRATION = False  # members are onboarded by staff
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "EnergySphere"
MFA_ADAPTER = "apps.accounts.mfa.MFAAdapter"  # staff cannot remove their TOTP
# Where staff must have passed TOTP in this session: "all" pages (except login/MFA, static,
# health) or only the "admin" plus STAFF_MFA_PATH_PREFIXES.
# Report-signing key (apps/compliance/reports/signing.py): every exported report is sealed with
# it; separate from the chain operator key. Empty locally: a published development key signs
# (production refuses that). REPORT_SIGNER_ADDRESS: the address verifiers trust (default: the
# key's).
REPORT_SIGNING_KEYSTORE_PATH = env("REPORT_SIGNING_KEYSTORE_PATH", default="")
REPORT_SIGNING_KEYSTORE_PASSWORD = env("REPORT_SIGNING_KEYSTORE_PASSWORD", default="")
REPORT_SIGNER_ADDRESS = env("REPORT_SIGNER_ADDRESS", default="")
# Reports stream as CSV at constant memory whatever their size; an XLSX or PDF file is built
# whole in memory, so larger reports are refused in those formats (with a pointer to CSV).
# XLSX: a spreadsheet sheet holds at most 1,048,576 rows anyway.
REPORT_XLSX_MAX_ROWS = env.int("REPORT_XLSX_MAX_ROWS", default=1_000_000)
REPORT_PDF_MAX_ROWS = env.int("REPORT_PDF_MAX_ROWS", default=100_000)
# Production refuses development settings at start (config/settings/production.py turns it on).
PRODUCTION_GUARD = False
# Hours a superuser's MFA enrollment link for a staff or auditor account stays valid.
MFA_ENROLLMENT_TTL_HOURS = env.int("MFA_ENROLLMENT_TTL_HOURS", default=72)
STAFF_MFA_SCOPE = env("STAFF_MFA_SCOPE", default="all")
STAFF_MFA_PATH_PREFIXES = env.list("STAFF_MFA_PATH_PREFIXES", default=["/admin/"])
# Sign-In with Ethereum (wallet linking): how long an issued message/nonce stays valid.
SIWE_NONCE_TTL_SECONDS = env.int("SIWE_NONCE_TTL_SECONDS", default=600)

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Local time is used only for rendering (members see their cooperative's wall clock).
COOPERATIVE_TIME_ZONE = env("COOPERATIVE_TIME_ZONE", default="Europe/Berlin")
# Billing: the cooperative's one currency (ISO 4217) and the payment term of its invoices.
BILLING_CURRENCY = env("BILLING_CURRENCY", default="EUR")
BILLING_PAYMENT_TERM_DAYS = env.int("BILLING_PAYMENT_TERM_DAYS", default=14)
# Dunning: the fee of each reminder level (level 1, 2, …; no level after the last) and the days a
# reminder gives to pay. Invoices and reminders are e-mailed by a Celery worker.
BILLING_DUNNING_FEES = env.list("BILLING_DUNNING_FEES", default=["0.00", "5.00", "10.00"])
BILLING_REMINDER_TERM_DAYS = env.int("BILLING_REMINDER_TERM_DAYS", default=10)
BILLING_EMAIL_ENQUEUE = env.bool("BILLING_EMAIL_ENQUEUE", default=True)

# Notifications (apps/notifications, docs/notifications.md). Web Push is signed with the VAPID
# key (base64url P-256 private key); without one a development key derived from SECRET_KEY is
# used, which `check --deploy` refuses in production.
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env("VAPID_PUBLIC_KEY", default="")
VAPID_SUBJECT = env("VAPID_SUBJECT", default="mailto:notifications@localhost")
# Deliver through Celery (one task per channel, retried with backoff); False: in the writing
# process after the commit (tests).
NOTIFICATIONS_ENQUEUE = env.bool("NOTIFICATIONS_ENQUEUE", default=True)
NOTIFICATIONS_MAX_RETRIES = env.int("NOTIFICATIONS_MAX_RETRIES", default=5)
NOTIFICATIONS_PUSH_TIMEOUT_S = env.int("NOTIFICATIONS_PUSH_TIMEOUT_S", default=10)
# A member's meter not heard from for this long is reported to them (meters_offline_notify).
METERS_OFFLINE_AFTER_MINUTES = env.int("METERS_OFFLINE_AFTER_MINUTES", default=120)

# Governance (apps/governance, docs/governance.md): the statutes' limit of proxies one member
# may hold at one assembly.
GOVERNANCE_MAX_PROXIES_PER_MEMBER = env.int("GOVERNANCE_MAX_PROXIES_PER_MEMBER", default=2)
# The cooperative as seller on its invoices (EN 16931 seller, SEPA creditor). The defaults are the
# published example identifiers, for development only.
BILLING_SELLER = {
    "name": env("BILLING_SELLER_NAME", default="EnergySphere Energiegenossenschaft eG"),
    "street": env("BILLING_SELLER_STREET", default="Sonnenallee 1"),
    "postal_code": env("BILLING_SELLER_POSTAL_CODE", default="10115"),
    "city": env("BILLING_SELLER_CITY", default="Berlin"),
    "country": env("BILLING_SELLER_COUNTRY", default="DE"),
    "vat_id": env("BILLING_SELLER_VAT_ID", default="DE123456789"),
    "iban": env("BILLING_SELLER_IBAN", default="DE89370400440532013000"),
    "bic": env("BILLING_SELLER_BIC", default="COBADEFFXXX"),
    "creditor_id": env("BILLING_SELLER_CREDITOR_ID", default="DE98ZZZ09999999999"),
}
# Membership (docs/membership.md): the join page's share capital, consents and limits.
MEMBERSHIP_SHARE_PRICE = env("MEMBERSHIP_SHARE_PRICE", default="100.00")
MEMBERSHIP_MIN_SHARES = env.int("MEMBERSHIP_MIN_SHARES", default=1)
MEMBERSHIP_MAX_SHARES = env.int("MEMBERSHIP_MAX_SHARES", default=50)
MEMBERSHIP_PRIVACY_POLICY_VERSION = env("MEMBERSHIP_PRIVACY_POLICY_VERSION", default="2026-01")
MEMBERSHIP_MANDATE_TEXT_VERSION = env("MEMBERSHIP_MANDATE_TEXT_VERSION", default="2026-01")
MEMBERSHIP_VERIFY_TTL_HOURS = env.int("MEMBERSHIP_VERIFY_TTL_HOURS", default=48)
# Join submissions per client address and hour (more are answered 429 and store nothing).
MEMBERSHIP_JOIN_RATE_PER_HOUR = env.int("MEMBERSHIP_JOIN_RATE_PER_HOUR", default=5)
# What happens to a leaving member's share capital: "credit_note" refunds it at once (a credit
# note of the share capital invoice, paid out by the next SEPA payout file); "hold" leaves the
# refund to staff (statutes with a waiting period).
MEMBERSHIP_SHARE_REFUND = env("MEMBERSHIP_SHARE_REFUND", default="credit_note")
# The supply tariff of a new member's first contract (code of a billing SupplyTariff; empty:
# the first tariff by code).
MEMBERSHIP_DEFAULT_TARIFF = env("MEMBERSHIP_DEFAULT_TARIFF", default="")

# django-import-export (see apps.accounts.policy: PolicyExportMixin, PolicyImportMixin): imports
# run in one transaction and roll back on any bad row; XLSX export drops characters openpyxl
# cannot store (formula text is escaped by our own spreadsheet_cell, not the library's option).
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
# The upload waits for its confirmation in the cache under a random key, not in the shared temp
# folder: the confirm form's file name (sent back by the browser) then names nothing but a
# pending import, never another process's temp file to read or delete.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.CacheStorage"
# A changelist export is built in memory: longer lists are refused with a message asking for a
# narrower filter (apps.accounts.policy.PolicyExportMixin).
ADMIN_EXPORT_MAX_ROWS = env.int("ADMIN_EXPORT_MAX_ROWS", default=100_000)

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "var" / "media"

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="EnergySphere <noreply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view names its class from the permission policy (apps/accounts/policy.py; the
    # permission-matrix test fails for one that does not); this default only backs that up.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.drf_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EnergySphere API",
    "DESCRIPTION": "Back-office API of an energy cooperative.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content Security Policy (django-csp): everything comes from our own origin; the few inline
# scripts carry the per-response nonce (`{{ request.csp_nonce }}`); no inline event handlers,
# no framing, forms post only to us. WebSockets are same-origin ('self').
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # the TOTP set-up QR code is a data: URI
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes logs every login at INFO; lockouts (WARNING) are what operators need.
        "axes": {"level": "WARNING"},
    },
}

# --- Seed configuration names (see README "Configuration") ---------------------------------
# Chainlink price/oracle feed address used by the chain app when a public network is configured;
# empty locally (the local MeterOracle contract is the oracle).
CHAINLINK_ORACLE = env("CHAINLINK_ORACLE", default="")
# Base URL of an external renewable-production data service (e.g. a TSO/transparency API).
# Unset: forecasts use pvlib clear-sky irradiance computed locally.
RENEWABLE_API = env("RENEWABLE_API", default="")
# API key for an external grid-analytics service. Unset: grid analytics run locally only
# (pandapower power flow), which is the full feature set.
GRID_ANALYTICS_KEY = env("GRID_ANALYTICS_KEY", default="")

from .celery import *  # noqa: E402,F403
from .chain import *  # noqa: E402,F403
from .mqtt import *  # noqa: E402,F403
