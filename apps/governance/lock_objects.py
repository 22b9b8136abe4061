"""Row locks of governance (see apps/core/locks.py).

Casting and closing lock the proposal: a vote cast while the proposal closes either lands
before the tally or is refused. Granting a proxy locks the assembly, so two grants to one holder
cannot both pass the statutes' limit."""

from __future__ import annotations

from apps.core.locks import lock_row
from apps.governance.models import Assembly, Proposal


def proposal_lock(proposal_id: int) -> Proposal:
    return lock_row(Proposal.objects.select_related("type"), proposal_id, of=("self",))


def assembly_lock(assembly_id: int) -> Assembly:
    return lock_row(Assembly.objects.all(), assembly_id)
