from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", apps=None, **kwargs):
    """Runs once per migrate/flush, at the post_migrate of the last app with models (Django sends
    post_migrate only to those): by then Django's own create_permissions handler has created
    every app's permissions."""
    from django.apps import apps as global_apps

    with_models = [c for c in global_apps.get_app_configs() if c.models_module is not None]
    if sender is not with_models[-1]:
        return
    from apps.accounts.services import roles_sync

    roles_sync(using=using, create_missing=False)


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.accounts"
    verbose_name = "Members and users"
    label = "accounts"

    def ready(self) -> None:
        from allauth.mfa.signals import authenticator_added

        from apps.accounts.mfa import record_activation
        from apps.accounts.policy import admin_site_apply_policy

        # After every migrate/flush: permissions of apps migrated later reach the groups too.
        post_migrate.connect(_sync_roles, dispatch_uid="accounts.roles_sync")
        authenticator_added.connect(record_activation, dispatch_uid="accounts.mfa_activation")
        # The admin autodiscovered every app's admin before this (django.contrib.admin is
        # installed first): third-party ModelAdmins go under the permission policy too.
        admin_site_apply_policy()
