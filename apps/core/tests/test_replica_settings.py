"""DATABASE_REPLICA_URL (config/settings/base.py): a `replica` alias with read-only sessions and a
pool of its own; reads inside `replica_reads()` go there, a write there is refused by PostgreSQL.
Checked in a fresh process on the development settings, against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.db import connections
from apps.accounts.models import User
from apps.core.replica import read_alias, replica_reads
replica = settings.DATABASES["replica"]
out = {"name": replica["NAME"], "options": replica["OPTIONS"]["options"],
       "pool_max": replica["OPTIONS"]["pool"]["max_size"],
       "routers": settings.DATABASE_ROUTERS, "outside": read_alias()}
with replica_reads():
    out["inside"] = read_alias()
    out["users"] = User.objects.count()
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE probe (i int)")
        out["write"] = "accepted"
    except Exception as exc:
        out["write"] = str(exc).splitlines()[0]
print(json.dumps(out))
"""


def test_a_replica_url_adds_a_read_only_replica_alias_with_its_own_pool():
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": url,
        "DATABASE_REPLICA_URL": url,
        "DB_REPLICA_POOL_MAX_SIZE": "3",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "name": db["NAME"],
        "options": "-c default_transaction_read_only=on",
        "pool_max": 3,
        "routers": ["apps.core.replica.ReplicaRouter"],
        "outside": "default",
        "inside": "replica",
        "users": out["users"],
        "write": "cannot execute CREATE TABLE in a read-only transaction",
    }
