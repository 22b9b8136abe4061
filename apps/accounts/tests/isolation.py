"""Member-isolation cases of accounts (collected by tests/test_member_isolation.py).

accounts has no URL that names an object by id: every member page and endpoint resolves the
member from the session (`member_for_user`). Those are checked for leaking another member's data
in tests/test_member_isolation.py; URL patterns with parameters that are not member objects are
declared exempt here with the reason.
"""

ISOLATION_CASES: list = []

ISOLATION_EXEMPT = {
    "portal:coming": "parameter is a navigation section, not a member object",
    "mfa_enroll": "parameter is a signed enrollment token bound to one staff account",
}
