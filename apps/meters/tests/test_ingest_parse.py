"""Message format v1 parsing: the fast path (msgspec structs) accepts exactly what the checks
with reasons (`parse_slow`) accept, with the same values; everything else gets its reason."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.meters.readings.wire import parse_message, parse_slow

GOOD = {
    "v": 1,
    "serial": "MTR-0001",
    "seq": 7,
    "start": "2026-11-20T10:00:00Z",
    "interval": 900,
    "import_wh": 120,
    "export_wh": 0,
    "register_import_wh": 10_120,
    "register_export_wh": 0,
    "status": 0,
    "sig": "0x" + "ab" * 32 + "11" * 32 + "1b",  # canonical shape: low s, v = 27
}
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**32 - 1, 2**32, 2**64 - 1, 2**64, 1_700_000_100]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=45),
    st.sampled_from(
        [
            "0x" + "ab" * 64,
            "ab" * 65,
            "0x" + "zz" * 65,
            "",
            "2026-11-20T10:00:00",
            "2026-11-20T10:00:00+01:00",
            "x" * 41,
        ]
    ),  # fmt: skip
    st.lists(st.integers(), max_size=2),
)
ITEMS = st.one_of(
    st.dictionaries(st.sampled_from(sorted(GOOD)), ODD_VALUES, max_size=4).map(
        lambda changes: {**GOOD, **changes}
    ),
    st.sets(st.sampled_from(sorted(GOOD))).map(
        lambda dropped: {k: v for k, v in GOOD.items() if k not in dropped}
    ),
    st.sampled_from([GOOD, 5, "reading", None, []]),
)


def _outcome(result):
    readings, rejects = result
    values = [tuple(getattr(p, f) for f in p.__slots__ if f != "body") for p in readings]
    return values, [(reason, detail, serial) for reason, detail, _body, serial in rejects]


# Generation time is not what is tested: on a loaded CI machine the first draws can be slow.
RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=300, **RELAXED)
@given(ITEMS)
def test_a_reading_message_parses_as_the_reasoned_checks_say(item):
    payload = json.dumps(item).encode()
    fast = parse_message(payload, topic="t", raw_message_id=1)
    assert _outcome(fast) == _outcome(parse_slow(payload, "t", 1, gateway_item=False))
    for (_reason, _detail, body, _serial), item_payload in zip(fast[1], [payload], strict=False):
        assert body == item_payload  # a rejected reading is kept exactly as received


@settings(max_examples=150, **RELAXED)
@given(st.lists(ITEMS, max_size=5))
def test_a_gateway_message_parses_item_by_item_as_the_reasoned_checks_say(items):
    payload = json.dumps({"v": 1, "readings": items}).encode()
    fast = parse_message(payload, topic="t", raw_message_id=1)
    if not items:  # an empty gateway message leaves a trace
        assert _outcome(fast) == ([], [("malformed", "readings: empty gateway message", "")])
        return
    reference = ([], [])
    for item in items:  # each item on its own through the reasoned checks
        readings, rejects = parse_slow(json.dumps(item).encode(), "t", 1, gateway_item=True)
        reference[0].extend(readings)
        reference[1].extend(rejects)
    assert _outcome(fast) == _outcome(reference)


def test_bad_input_is_rejected_with_its_reason_and_kept_as_received():
    bad_item = {**GOOD, "import_wh": -5}
    payload = json.dumps({"v": 1, "readings": [GOOD, bad_item, {**GOOD, "sig": None}]}).encode()
    readings, rejects = parse_message(payload, topic="t", raw_message_id=1)
    assert [p.seq for p in readings] == [7]
    assert [(r[0], r[3]) for r in rejects] == [("negative", "MTR-0001"),
                                                ("missing_signature", "MTR-0001")]  # fmt: skip
    assert json.loads(rejects[0][2]) == bad_item
    for raw, reason in ((b"{not json", "malformed"), (b'{"v": 1, "readings": 3}', "malformed"),
                        (json.dumps({**GOOD, "seq": True}).encode(), "wrong_type"),
                        (json.dumps({**GOOD, "seq": 2**64}).encode(), "out_of_range")):  # fmt: skip
        readings, rejects = parse_message(raw, topic="t", raw_message_id=1)
        assert readings == [] and rejects[0][0] == reason and rejects[0][2] == raw
