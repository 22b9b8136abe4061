from django.urls import path

from apps.governance import views

app_name = "governance"

urlpatterns = [
    path("", views.index, name="index"),
    path("proposals/<int:pk>/", views.proposal, name="proposal"),
    path("proposals/<int:pk>/verify/", views.verify, name="verify"),
    path("proxies/", views.proxies, name="proxies"),
]
