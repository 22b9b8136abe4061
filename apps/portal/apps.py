from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The portal shell: navigation by role, base pages, the dashboard, the auditor area, the
    staff home (admin index) and /healthz. It reads the other apps through their selectors; no
    app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.portal"
    label = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from celery.signals import task_postrun

        from apps.portal.activity import task_run_record

        task_postrun.connect(task_run_record, weak=False, dispatch_uid="cockpit-task-run")
