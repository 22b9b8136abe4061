from django.urls import path

from apps.billing import views

app_name = "billing"

urlpatterns = [
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("staff/runs/", views.staff_runs, name="staff_runs"),
    path("staff/moves/", views.staff_moves, name="staff_moves"),
    path("staff/sepa/<int:pk>/", views.sepa_file, name="sepa_file"),
    path("staff/bank/", views.staff_bank, name="staff_bank"),
    path("staff/bank/<int:pk>/assign/", views.staff_bank_assign, name="staff_bank_assign"),
    path("staff/aging/", views.staff_aging, name="staff_aging"),
]
