"""Row locks of the accounts app (see apps/core/locks.py: one row, or several in pk order)."""

from __future__ import annotations

from apps.accounts.models import Member, MFAEnrollment, User, WalletNonce
from apps.core.locks import lock_first, lock_row


def member_lock(member_id: int, *, with_user: bool = False) -> Member:
    """The member row; `with_user` joins (and so also locks) its user row."""
    queryset = Member.objects.select_related("user") if with_user else Member.objects.all()
    return lock_row(queryset, member_id)


def wallet_nonce_lock(*, user: User, nonce: str) -> WalletNonce | None:
    """The SIWE nonce issued to `user`, or None when it was not issued to them."""
    return lock_first(WalletNonce.objects.filter(user=user, nonce=nonce))


def mfa_enrollment_lock_by_nonce(nonce: str) -> MFAEnrollment | None:
    """The enrollment link row a token names (its nonce is unique), or None."""
    return lock_first(MFAEnrollment.objects.filter(nonce=nonce))


def mfa_enrollment_lock_open(*, enrollment_id: int, user: User) -> MFAEnrollment | None:
    """The user's redeemed, not yet completed enrollment, or None."""
    return lock_first(
        MFAEnrollment.objects.filter(
            pk=enrollment_id, user=user, redeemed_at__isnull=False, completed_at__isnull=True
        )
    )
