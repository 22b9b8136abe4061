from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from apps.core.health import health_report


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 only when every component is up."""
    report = health_report()
    healthy = all(state == "ok" for state in report.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "components": report},
        status=200 if healthy else 503,
    )
