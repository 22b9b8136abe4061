"""Garbage-collector settings for the long-running hot processes (ingest workers, MQTT bridge).

After start-up a Django process holds ~280,000 objects (modules, settings, models) that live
forever. Every full collection walks all of them, and the ingest path allocates tens of
thousands of short-lived objects per batch, so the cyclic GC cost a measurable share of each
reading (`bench/bench_ingest.py`; figures in bench/RESULTS.md). `gc.freeze()` moves the start-up
objects to a permanent generation the collector never scans (Python docs, `gc.freeze`), and a
larger first-generation threshold lets a batch's temporaries die by reference counting before a
collection runs. Collection stays on: cycles are still freed.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def gc_tune_long_running() -> None:
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
