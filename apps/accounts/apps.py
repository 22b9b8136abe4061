from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs):
    from apps.accounts.services import roles_sync

    roles_sync(using=using)


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from allauth.mfa.signals import authenticator_added

        from apps.accounts.mfa import record_activation

        # After every migrate/flush: permissions of apps migrated later reach the groups too.
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="accounts.roles_sync")
        authenticator_added.connect(record_activation, dispatch_uid="accounts.mfa_activation")
