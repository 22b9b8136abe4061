from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.audit"
    verbose_name = "Audit log"
    label = "audit"

    def ready(self) -> None:
        from apps.audit.receivers import status_changed_audit
        from apps.core.state import status_changed

        status_changed.connect(status_changed_audit, dispatch_uid="audit.status_changed")
