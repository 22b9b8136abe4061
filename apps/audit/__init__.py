"""The audit log: the append-only record every app writes to.

A small kernel: every app of ours may import it; it imports none of ours except `apps.core`.
"""
