"""gunicorn settings for the ASGI server (`make run`, production): `gunicorn -c config/gunicorn.py`.

gunicorn supervises WEB_WORKERS uvicorn worker processes; each runs one event loop serving
HTTP and WebSockets (Channels) and runs Django's synchronous views in threads. Every worker has
its own database pool of at most DB_POOL_MAX_SIZE connections (config/settings/base.py), so the
web tier holds at most WEB_WORKERS × DB_POOL_MAX_SIZE connections. Behind a TLS proxy, bind to
loopback and list the proxy in FORWARDED_ALLOW_IPS (README, Deployment).
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
wsgi_app = "config.asgi:application"
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WEB_WORKERS", "2"))
# A worker whose event loop does not report for this long is restarted.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
