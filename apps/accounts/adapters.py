import time

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:  # members are onboarded by staff
        return bool(getattr(settings, "ACCOUNT_ALLOW_REGISTRATION", False))

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A password login in this session within the reauthentication timeout counts as
        recent, so staff sent to set up TOTP right after logging in are not asked for their
        password a second time. Older sessions still have to reauthenticate."""
        request = getattr(self, "request", None)
        user = getattr(request, "user", None)
        if request is not None and user is not None and user.is_authenticated:
            records = get_authentication_records(request, user)
            logins = [r["at"] for r in records if r.get("method") == "password"]
            if logins and time.time() - logins[-1] < account_settings.REAUTHENTICATION_TIMEOUT:
                return False
        return super().is_reauthentication_required(app=app, **kwargs)
