import pytest

from tests.fixtures.core import login_with_mfa


@pytest.mark.django_db
def test_healthz_reports_each_component_to_staff(client, staff_user):
    login_with_mfa(client, staff_user)
    response = client.get("/healthz")
    body = response.json()
    assert set(body["components"]) == {"database", "redis", "mqtt", "chain"}
    assert body["components"]["database"] == "ok"
    assert body["components"]["redis"] == "ok"
    assert body["components"]["mqtt"] == "ok"
    # 200 only when every component (chain included) is ok.
    all_ok = all(v == "ok" for v in body["components"].values())
    assert response.status_code == (200 if all_ok else 503)
    assert body["status"] == ("ok" if all_ok else "degraded")


@pytest.mark.django_db
def test_healthz_tells_anonymous_callers_and_members_only_up_or_down(client, member, settings):
    settings.IOT_BROKER_URL = "mqtt://127.0.0.1:1"  # a component down, with an error text
    for who in (None, member.user):
        if who is not None:
            client.force_login(who)
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "degraded"}
