"""Member-isolation declarations of the compliance app (tests/test_member_isolation.py).

No member-owned object is addressed by URL here: "my data" pages resolve the member from the
session. The parametrised pages are staff/auditor pages; members get 403 (test_reports.py,
test_access.py).
"""

ISOLATION_CASES: list = []
ISOLATION_EXEMPT = {
    "compliance:report": "staff/auditor report page: members get 403",
    "compliance:report_download": "staff/auditor report download: members get 403",
    "compliance:erasure_handle": "staff only: members and auditors get 403",
}
