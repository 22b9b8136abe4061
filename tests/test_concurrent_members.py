"""Thirty members at once on the production ASGI server: nobody sees a server error, and the
server's PostgreSQL connections never exceed its pool bounds (issue 21: under concurrent members
the server used to open a connection per request thread until PostgreSQL refused new clients)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from django.conf import settings
from websockets.sync.client import connect as websocket_connect

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENTS = 30
PAGES = ["/", "/market/", "/market/statements/"]
API_LISTS = [
    "/api/meters/mine/",
    "/api/market/orders/",
    "/api/market/trades/",
    "/api/market/statements/",
]
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class ConnectionPeak(threading.Thread):
    """Samples pg_stat_activity for the connections of one application_name."""

    def __init__(self, dsn: str, application_name: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.application_name = application_name
        self.stop = threading.Event()
        self.peak = 0

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [self.application_name],
                ).fetchone()
                self.peak = max(self.peak, count)
                self.stop.wait(0.01)


def _member_session(base: str, n: int, email: str, start: threading.Barrier) -> list[tuple]:
    """Log in and browse; returns (url, status) of every response."""
    seen: list[tuple] = []
    with requests.Session() as http:
        # Each member is its own client behind the proxy (the login rate limit is per address).
        http.headers["X-Forwarded-For"] = f"10.0.{n // 256}.{n % 256}"
        start.wait(timeout=60)
        form = http.get(f"{base}/accounts/login/", timeout=60)
        seen.append(("GET /accounts/login/", form.status_code))
        token = CSRF_INPUT.search(form.text).group(1)
        login = http.post(
            f"{base}/accounts/login/",
            data={"csrfmiddlewaretoken": token, "login": email, "password": DEFAULT_PASSWORD},
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=60,
        )
        seen.append(("POST /accounts/login/", login.status_code))
        seen.append(("logged in", not login.url.endswith("/accounts/login/")))
        for url in PAGES + API_LISTS:
            response = http.get(f"{base}{url}", timeout=60)
            seen.append((url, response.status_code))
    return seen


def test_thirty_members_at_once_get_no_server_error_within_the_pool_bound(
    production_live_server,
):
    from django.db import connection

    server = production_live_server
    members = [MemberFactory() for _ in range(CLIENTS)]
    db = connection.settings_dict
    peak = ConnectionPeak(
        f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
        f"user={db['USER']} dbname={db['NAME']}"
        + (f" password={db['PASSWORD']}" if db.get("PASSWORD") else ""),
        server.db_application_name,
    )
    peak.start()
    start = threading.Barrier(CLIENTS)
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            runs = [
                pool.submit(_member_session, server.url, n, m.user.email, start)
                for n, m in enumerate(members)
            ]
            results = [r.result(timeout=300) for r in runs]
    finally:
        peak.stop.set()
        peak.join(timeout=5)

    responses = [item for seen in results for item in seen]
    server_errors = [(url, s) for url, s in responses if url != "logged in" and s >= 500]
    assert server_errors == [], server.log()[-3000:]
    assert all(ok for url, ok in responses if url == "logged in")
    assert {s for url, s in responses if url in PAGES + API_LISTS} == {200}
    assert len(responses) == CLIENTS * (3 + len(PAGES) + len(API_LISTS))
    # The server used the database, and never held more connections than its pools allow: one
    # pool per worker and database alias (the test settings add the read replica's alias, on the
    # same database, so the dashboard and statements read through its read-only sessions).
    aliases = [a for a, db in settings.DATABASES.items() if db.get("OPTIONS", {}).get("pool")]
    assert 0 < peak.peak <= server.db_pool_bound * len(aliases)


def test_a_login_storm_hashed_with_argon2_gets_no_server_error(production_live_server_argon2):
    """Thirty members log in at the same moment on a server whose pools hold 8 connections and
    whose logins check Argon2id hashes as production does: every login succeeds, none waits
    for a pooled connection while hashing, nobody gets a 5xx."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.hashers import CooperativeArgon2PasswordHasher
    from apps.accounts.models import User

    server = production_live_server_argon2
    members = [MemberFactory() for _ in range(CLIENTS)]
    argon2 = make_password(DEFAULT_PASSWORD, hasher=CooperativeArgon2PasswordHasher())
    User.objects.filter(pk__in=[m.user_id for m in members]).update(password=argon2)
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        runs = [
            pool.submit(_member_session, server.url, n, m.user.email, start)
            for n, m in enumerate(members)
        ]
        responses = [item for r in runs for item in r.result(timeout=300)]
    assert server.db_pool_bound < CLIENTS
    assert [(u, s) for u, s in responses if u != "logged in" and s >= 500] == [], server.log()[
        -3000:
    ]
    assert [ok for u, ok in responses if u == "logged in"] == [True] * CLIENTS
    # They were checked against their Argon2id hashes (no rehash to another algorithm).
    assert set(User.objects.filter(pk__in=[m.user_id for m in members]).values_list(
        "password", flat=True)) == {argon2}  # fmt: skip


def test_a_member_opens_the_live_websocket_on_the_production_server(production_live_server):
    """The production server carries WebSockets (Channels) too: a logged-in member's live meter
    feed is accepted, an anonymous one is refused."""
    server = production_live_server
    member = MemberFactory()
    with requests.Session() as http:
        form = http.get(f"{server.url}/accounts/login/", timeout=60)
        http.post(
            f"{server.url}/accounts/login/",
            data={
                "csrfmiddlewaretoken": CSRF_INPUT.search(form.text).group(1),
                "login": member.user.email,
                "password": DEFAULT_PASSWORD,
            },
            headers={"Referer": f"{server.url}/accounts/login/"},
            timeout=60,
        )
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    url = f"{server.ws_url}/ws/meters/live/"
    with websocket_connect(
        url, origin=server.url, additional_headers={"Cookie": cookie}, open_timeout=30
    ) as ws:
        ws.ping().wait(timeout=30)
    with pytest.raises(Exception, match="403"):
        websocket_connect(url, origin=server.url, open_timeout=30).close()
