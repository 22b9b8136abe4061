"""Member-isolation cases of governance (collected by tests/test_member_isolation.py).

Proposals are the cooperative's, not a member's: every member sees every open or closed one.
What is personal — whether you voted, the proxies you gave or hold — is resolved from the
session, never from a URL parameter."""

ISOLATION_CASES: list = []

ISOLATION_EXEMPT = {
    "governance:proposal": "a proposal belongs to the cooperative; every member may see it",
    "governance:verify": "checks a receipt the visitor holds; shows no member",
}
