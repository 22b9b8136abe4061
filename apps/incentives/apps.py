from django.apps import AppConfig


class IncentivesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.incentives"
    verbose_name = "Certificates and incentives"
    label = "incentives"

    def ready(self) -> None:
        from apps.grid.signals import dr_performance_measured
        from apps.incentives import receivers
        from apps.market.signals import settlement_run_settled

        settlement_run_settled.connect(
            receivers.on_settlement_run_settled, dispatch_uid="incentives.settlement_run_settled"
        )
        dr_performance_measured.connect(
            receivers.on_dr_performance_measured,
            dispatch_uid="incentives.dr_performance_measured",
        )
