from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:  # members are onboarded by staff
        return bool(getattr(settings, "ACCOUNT_ALLOW_REGISTRATION", False))
