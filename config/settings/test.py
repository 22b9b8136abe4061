"""Settings for the test suite: the same real services, isolated names."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
_PRODUCTION_HASHERS = PASSWORD_HASHERS  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if env.bool("TEST_PRODUCTION_HASHERS", default=False):
    # A server started by a test that measures logins as production hashes them (Argon2id);
    # the suite's fast MD5 hashes still verify.
    PASSWORD_HASHERS = [*_PRODUCTION_HASHERS, *PASSWORD_HASHERS]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("REDIS_URL", default="redis://127.0.0.1:6379/0"),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="es-test"),
    }
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The ASGI server in tests serves static files from the apps and static/ (no collectstatic).
WHITENOISE_USE_FINDERS = True
# Tests drive the chain outbox explicitly (chain_outbox_sweep); nothing is queued to a broker
# that a running development worker could pick up.
CHAIN_OUTBOX_ENQUEUE = env.bool("CHAIN_OUTBOX_ENQUEUE", default=False)
# Billing e-mails are sent when the issuing transaction commits, in the test process.
BILLING_EMAIL_ENQUEUE = False
# Notifications are delivered in the test process after the commit (no broker queue).
NOTIFICATIONS_ENQUEUE = False
# Staff MFA guards only the admin in tests: other apps' tests log staff in with force_login.
# apps/accounts tests switch to the production scope ("all") explicitly.
STAFF_MFA_SCOPE = "admin"
# The replica router runs in the whole suite: `replica` is a second connection alias to the test
# database, a TEST MIRROR of default (so no second test database is created). Reads inside
# `replica_reads()` outside a transaction go through it (apps/core/replica.py); pytest-django's
# test transaction keeps every other test on default. TEST_DATABASE_REPLICA=false turns it off.
if env.bool("TEST_DATABASE_REPLICA", default=True) and "replica" not in DATABASES:  # noqa: F405
    DATABASES["replica"] = {  # noqa: F405
        **DATABASES["default"],  # noqa: F405
        # Read-only sessions: a server started on the test settings fails loudly on any write
        # routed there (under pytest the mirror takes default's settings instead).
        "OPTIONS": {
            **DATABASES["default"].get("OPTIONS", {}),  # noqa: F405
            "options": "-c default_transaction_read_only=on",
        },
        "TEST": {"MIRROR": "default"},
    }

# pytest-xdist: every worker (PYTEST_XDIST_WORKER = gw0, gw1, …) gets its own names on the shared
# Redis and Mosquitto (pytest-django already gives it its own test database). Idempotent: a
# server subprocess started by a test inherits the worker variable and receives the prefixes
# already suffixed, and keeps them.
_XDIST_WORKER = env("PYTEST_XDIST_WORKER", default="")


def _per_worker(name: str, sep: str = "-") -> str:
    suffix = f"{sep}{_XDIST_WORKER}"
    return name if not _XDIST_WORKER or name.endswith(suffix) else name + suffix


if _XDIST_WORKER:
    CACHES["default"]["KEY_PREFIX"] = _per_worker(CACHES["default"]["KEY_PREFIX"])
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _per_worker(  # noqa: F405
        CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]  # noqa: F405
    )
    MQTT_TOPIC_PREFIX = _per_worker(MQTT_TOPIC_PREFIX, "/")  # noqa: F405
    _celery_prefix = env("CELERY_BROKER_KEY_PREFIX", default="es-test-celery").rstrip(":")
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _per_worker(_celery_prefix) + ":"}
