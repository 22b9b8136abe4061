"""Locust users for `make bench BENCH=load` (bench/bench_load.py starts locust with this file).

Members log in once, then browse the dashboard, trading, statements and the API lists; staff log
in with password and TOTP, then browse the admin. Accounts come from the environment the bench
sets: BENCH_LOAD_MEMBERS and BENCH_LOAD_STAFF (comma-separated e-mails), BENCH_LOAD_PASSWORD,
BENCH_LOAD_TOTP_SECRET, BENCH_LOAD_STAFF_COUNT (staff users) and BENCH_LOAD_WAIT ("min,max"
seconds of think time between two pages). No Django here: locust runs under gevent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import re
import struct
import time

from locust import FastHttpUser, between, task

MEMBERS = itertools.cycle(os.environ.get("BENCH_LOAD_MEMBERS", "").split(","))
STAFF = itertools.cycle(os.environ.get("BENCH_LOAD_STAFF", "").split(","))
PASSWORD = os.environ.get("BENCH_LOAD_PASSWORD", "")
TOTP_SECRET = os.environ.get("BENCH_LOAD_TOTP_SECRET", "")
STAFF_COUNT = int(os.environ.get("BENCH_LOAD_STAFF_COUNT", "5"))
WAIT = [float(s) for s in os.environ.get("BENCH_LOAD_WAIT", "2,8").split(",")]
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CLIENTS = itertools.count(1)


def totp_now(secret: str) -> str:
    """RFC 6238 code (30 s, 6 digits, SHA-1): what the staff's authenticator app shows."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class _LoggedIn(FastHttpUser):
    """One simulated person behind the TLS proxy: its own client address, as the proxy reports it
    in X-Forwarded-For (the server trusts it from loopback), so per-address limits such as the
    login rate limit apply per person, not to the whole load generator."""

    abstract = True
    wait_time = between(*WAIT)

    def __init__(self, environment) -> None:
        n = next(CLIENTS)
        self.default_headers = {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
        super().__init__(environment)

    def _form(self, url: str, data: dict[str, str], name: str) -> str:
        """GET a form, POST it with its CSRF token; returns the final URL after redirects."""
        with self.client.get(url, name=name, catch_response=True) as page:
            found = CSRF_INPUT.search(page.text or "")
            if not found:
                page.failure("no CSRF token in the form")
                return ""
        headers = {"Referer": f"{self.host}{url}"}
        with self.client.post(
            url,
            data={"csrfmiddlewaretoken": found.group(1), **data},
            headers=headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code >= 400:
                response.failure(f"HTTP {response.status_code}")
            elif (response.url or "").endswith(url):
                response.failure("form rejected (still on the form)")
            return response.url or ""

    def _login(self, email: str) -> str:
        return self._form(
            "/accounts/login/", {"login": email, "password": PASSWORD}, "/accounts/login/"
        )


class Member(_LoggedIn):
    weight = 1

    def on_start(self) -> None:
        self._login(next(MEMBERS))

    @task(4)
    def dashboard(self) -> None:
        self.client.get("/", name="/ (dashboard)")

    @task(2)
    def trading(self) -> None:
        self.client.get("/market/", name="/market/ (trading)")

    @task(1)
    def statements(self) -> None:
        self.client.get("/market/statements/")

    @task(2)
    def api_lists(self) -> None:
        for url in (
            "/api/meters/mine/",
            "/api/market/orders/",
            "/api/market/trades/",
            "/api/market/statements/",
        ):
            self.client.get(url)


class Staff(_LoggedIn):
    fixed_count = STAFF_COUNT

    def on_start(self) -> None:
        landed = self._login(next(STAFF))
        if "/2fa/" in landed:
            path = "/" + landed.split("/", 3)[3]
            self._form(path, {"code": totp_now(TOTP_SECRET)}, "/accounts/2fa/authenticate/")

    @task(2)
    def admin_index(self) -> None:
        self.client.get("/admin/")

    @task(2)
    def members(self) -> None:
        self.client.get("/admin/accounts/member/")

    @task(1)
    def connection_points(self) -> None:
        self.client.get("/admin/grid/connectionpoint/")

    @task(1)
    def users(self) -> None:
        self.client.get("/admin/accounts/user/")
