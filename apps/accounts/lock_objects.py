"""Row locks of the accounts app (see apps/core/locks.py: one row, or several in pk order)."""

from __future__ import annotations

from apps.accounts.models import Member, User, WalletNonce
from apps.core.locks import lock_first, lock_row


def member_lock(member_id: int, *, with_user: bool = False) -> Member:
    """The member row; `with_user` joins (and so also locks) its user row."""
    queryset = Member.objects.select_related("user") if with_user else Member.objects.all()
    return lock_row(queryset, member_id)


def wallet_nonce_lock(*, user: User, nonce: str) -> WalletNonce | None:
    """The SIWE nonce issued to `user`, or None when it was not issued to them."""
    return lock_first(WalletNonce.objects.filter(user=user, nonce=nonce))
