import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class ChainConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.chain"
    verbose_name = "Blockchain"
    label = "chain"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from apps.chain import checks  # noqa: F401  (registers the deployment checks)

        worker_ready.connect(_check_chain_at_worker_start, weak=False)


def _check_chain_at_worker_start(**kwargs) -> None:
    """Say clearly at start when the configured node is not the expected chain (the outbox also
    refuses to sign then, and writes the same message on every waiting row)."""
    from apps.chain.client import ChainError, check_chain_id

    try:
        check_chain_id()
    except ChainError as exc:
        logger.error("chain: %s", exc.message)
    else:
        logger.info("chain: node chain id verified")
