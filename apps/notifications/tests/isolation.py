"""Member-isolation cases of notifications: no URL names an object by id (the inbox, the
preferences and the push subscription resolve the member from the session; marking read takes
ids in the POST body and only ever touches the logged-in member's rows)."""

ISOLATION_CASES: list = []
ISOLATION_EXEMPT: dict[str, str] = {}
