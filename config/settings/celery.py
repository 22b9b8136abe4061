"""Celery: Redis broker, named queues, routes. The beat schedule lives in config/celery.py."""

import environ

_env = environ.Env()
_redis = _env("REDIS_URL", default="redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = _env("CELERY_BROKER_URL", default=_redis)
CELERY_RESULT_BACKEND = _env("CELERY_RESULT_BACKEND", default=_redis)
# Two stacks sharing one Redis (e.g. `make run` next to the browser test's stack) need their own
# queues: every broker key gets this prefix.
_broker_prefix = _env("CELERY_BROKER_KEY_PREFIX", default="")
if _broker_prefix:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _broker_prefix}
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUES_NAMES = ("default", "ingest", "market", "chain", "grid", "reports")
# Route by the app a task lives in: apps.<app>.tasks.*
CELERY_TASK_ROUTES = {
    "apps.meters.tasks.*": {"queue": "ingest"},
    "apps.market.tasks.*": {"queue": "market"},
    "apps.chain.tasks.*": {"queue": "chain"},
    "apps.grid.tasks.*": {"queue": "grid"},
    "apps.incentives.tasks.*": {"queue": "market"},
}
CELERY_TASK_ALWAYS_EAGER = _env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
