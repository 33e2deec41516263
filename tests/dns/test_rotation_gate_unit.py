"""The rotation gate's decision and its zone-server discovery, with fake answers (the real server
is in test_rotation_gate.py). Properties over every mix of server answers and clock values."""

from __future__ import annotations

import base64
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from provisioner.dns.authoritative import MAX_SERVERS, Served, ServerAnswer, zone_servers
from provisioner.dns.rotation import GateVerdict, judge_standby, refusal
from provisioner.mailauth.resolver import Nameserver, Outcome, StaticResolver

OURS = "v=DKIM1; k=ed25519; p=" + base64.b64encode(b"\x01" * 32).decode()
OTHER = "v=DKIM1; k=ed25519; p=" + base64.b64encode(b"\x02" * 32).decode()
T0 = dt.datetime(2026, 11, 4, 10, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(hours=1)

MATCH = ServerAnswer("192.0.2.1", Served.ANSWER, (OURS,), 300)
KINDS = {
    "match": MATCH,
    "match-split-differently": ServerAnswer("192.0.2.2", Served.ANSWER, ("google-site-verification=x", OURS.replace("; ", ";")), 600),
    "absent": ServerAnswer("192.0.2.3", Served.ABSENT, (), 3600, "NXDOMAIN"),
    "silent": ServerAnswer("192.0.2.4", Served.NO_ANSWER, (), 0, "no reply in 2 s"),
    "other-key": ServerAnswer("192.0.2.5", Served.ANSWER, (OTHER,), 300),
    "revoked": ServerAnswer("192.0.2.6", Served.ANSWER, ("v=DKIM1; p=",), 300),
    "two-keys": ServerAnswer("192.0.2.7", Served.ANSWER, (OURS, OTHER), 300),
}


def decide(answers: list[ServerAnswer], first_seen: dt.datetime | None, now: dt.datetime) -> GateVerdict:
    return judge_standby("a.example", "s1", OURS, answers, first_seen, now, GRACE).verdict


@given(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6), st.integers(0, 10 * 3600), st.none() | st.integers(0, 10 * 3600))
def test_ready_only_when_every_server_serves_our_key_long_enough(kinds: list[str], later: int, seen_after: int | None) -> None:
    answers = [KINDS[k] for k in kinds]
    now = T0 + dt.timedelta(seconds=later)
    first = None if seen_after is None else T0 + dt.timedelta(seconds=seen_after)
    verdict = decide(answers, first, now)
    if any(k in ("other-key", "revoked", "two-keys") for k in kinds):
        assert verdict is GateVerdict.DIFFERENT
    elif any(k in ("absent", "silent") for k in kinds):
        assert verdict is GateVerdict.NOT_SERVED
    else:
        ttl = max(a.ttl for a in answers)
        since = first if first is not None and first <= now else now
        ready = now >= since + dt.timedelta(seconds=ttl) + GRACE
        assert verdict is (GateVerdict.READY if ready else GateVerdict.WAIT)


def test_no_server_to_ask_is_not_served() -> None:
    assert decide([], T0, T0 + dt.timedelta(days=9)) is GateVerdict.NOT_SERVED


def test_a_first_sighting_in_the_future_counts_from_now() -> None:
    """A clock set back (or an edited file) cannot open the gate early."""
    result = judge_standby("a.example", "s1", OURS, [MATCH], T0 + dt.timedelta(days=1), T0, GRACE)
    assert result.verdict is GateVerdict.WAIT and result.first_seen == T0


def test_refusals_name_the_selector_the_time_and_the_next_command() -> None:
    wait = judge_standby("a.example", "s1", OURS, [MATCH], T0, T0, GRACE)
    text = refusal(wait, GRACE, "site.yaml")
    assert "possible from 2026-11-04 11:05:00 UTC" in text and "TTL (5 min) + 1 h" in text
    assert "`provision keys site.yaml --rotate a.example`" in text
    hostile = ServerAnswer("192.0.2.9", Served.ANSWER, ("v=DKIM1; p=\x1b[8m\nforged" + "A" * 5000,), 300)
    text = refusal(judge_standby("a.example", "s1", OURS, [hostile], None, T0, GRACE), GRACE, "site.yaml")
    assert "\x1b" not in text and "\n" not in text and len(text) < 1000  # repr-quoted and cut
    assert "s1" in text and "192.0.2.9 serves 'v=DKIM1; p=\\x1b[8m\\nforged" in text


def test_zone_servers_walks_up_to_the_zone_cut_and_finds_addresses() -> None:
    resolver = StaticResolver(
        {
            ("a.example", "NS"): ["ns2.dns.test.", "ns1.dns.test."],
            ("ns1.dns.test", "A"): ["192.0.2.53"],
            ("ns1.dns.test", "AAAA"): ["2001:db8::53"],
            ("ns2.dns.test", "A"): ["192.0.2.54"],
            ("_domainkey.a.example", "TXT"): ["x"],
        }
    )
    zone, servers, problem = zone_servers("s1._domainkey.a.example", resolver)
    assert (zone, problem) == ("a.example", "")
    assert servers == [Nameserver("192.0.2.53"), Nameserver("192.0.2.54"), Nameserver("2001:db8::53")]


def test_zone_servers_says_why_when_none_is_found() -> None:
    failed = StaticResolver({("a.example", "NS"): Outcome.SERVFAIL})
    assert zone_servers("a.example", failed)[1:] == ([], "the NS question for a.example failed: lookup failed (SERVFAIL)")
    no_address = StaticResolver({("a.example", "NS"): ["ns1.a.example."]})
    assert "no address found for the NS hosts of a.example (ns1.a.example)" in zone_servers("a.example", no_address)[2]
    many = StaticResolver({("a.example", "NS"): [f"ns{i}.t." for i in range(100)], **{(f"ns{i}.t", "A"): [f"192.0.2.{i}"] for i in range(100)}})
    assert len(zone_servers("a.example", many)[1]) == MAX_SERVERS  # a hostile NS set is bounded
