from django.urls import path

from apps.grid import apis

app_name = "grid-api"

urlpatterns = [
    path("events/", apis.MemberEventsApi.as_view(), name="events"),
    path("events/<int:pk>/opt/", apis.MemberEventOptApi.as_view(), name="event_opt"),
    path("plan/", apis.CurrentPlanApi.as_view(), name="plan"),
]
