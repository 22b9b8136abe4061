import pytest


@pytest.mark.django_db
def test_healthz_reports_each_component(client):
    response = client.get("/healthz")
    body = response.json()
    assert set(body["components"]) == {"database", "redis", "mqtt", "chain"}
    assert body["components"]["database"] == "ok"
    assert body["components"]["redis"] == "ok"
    assert body["components"]["mqtt"] == "ok"
    # 200 only when every component (chain included) is ok.
    all_ok = all(v == "ok" for v in body["components"].values())
    assert response.status_code == (200 if all_ok else 503)
