"""mailauth/spf.py: the include/redirect walk and pyspf's check_host, on a table resolver."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provisioner.mailauth.grammar import LOOKUP_MECHANISMS
from provisioner.mailauth.resolver import Outcome, StaticResolver
from provisioner.mailauth.spf import SpfProblemKind, SpfResult, check_host, walk_spf


def test_spf_walk_counts_through_includes_and_redirect() -> None:
    fake = StaticResolver(
        {
            ("d.example", "TXT"): ["v=spf1 mx include:i.example redirect=r.example"],
            ("d.example", "MX"): ["10 mx.d.example."],
            ("mx.d.example", "A"): ["192.0.2.1"],
            ("i.example", "TXT"): ["v=spf1 a:h.example exists:e.example ~all"],
            ("h.example", "A"): ["192.0.2.2"],
            ("e.example", "A"): ["127.0.0.2"],
            ("r.example", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
        }
    )
    walk = walk_spf("d.example", fake)
    assert (walk.lookups, walk.void_lookups, walk.problems) == (5, 0, [])
    assert walk.chain == ["d.example", "i.example", "r.example"]


def test_spf_loop_is_detected() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 include:b.example -all"], ("b.example", "TXT"): ["v=spf1 redirect=a.example"]})
    walk = walk_spf("a.example", fake)
    loops = [p for p in walk.problems if p.kind is SpfProblemKind.LOOP]
    assert [p.detail for p in loops] == ["a.example -> b.example -> a.example"]


def test_spf_void_lookups_counted() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 a:gone1.example a:gone2.example exists:gone3.example mx:a.example -all"]})
    walk = walk_spf("a.example", fake)
    assert walk.void_lookups == 4  # three NXDOMAIN names and an MX NODATA
    assert walk.lookups == 4


def test_spf_include_without_record_and_temperror() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 include:none.example include:slow.example -all"], ("slow.example", "TXT"): Outcome.TIMEOUT})
    kinds = [p.kind for p in walk_spf("a.example", fake).problems]
    assert kinds == [SpfProblemKind.NO_RECORD, SpfProblemKind.TEMPERROR]


def test_pyspf_check_host_runs_on_our_resolver() -> None:
    fake = StaticResolver(
        {("a.example", "TXT"): ["v=spf1 ip4:192.0.2.10 ip6:2001:db8::/64 include:b.example -all"], ("b.example", "TXT"): ["v=spf1 ip4:198.51.100.7 -all"]}
    )
    assert check_host("192.0.2.10", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("2001:db8::10", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("198.51.100.7", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("203.0.113.1", "a.example", "mail.a.example", fake).result is SpfResult.FAIL
    assert ("b.example.", "TXT") in fake.asked


def test_pyspf_enforces_void_limit_on_our_resolver() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 a:x1.example a:x2.example a:x3.example ip4:192.0.2.10 -all"]})
    assert check_host("192.0.2.10", "a.example", "h.a.example", fake).result is SpfResult.PERMERROR


# ---------------------------------------------------------------------------- added with the move to mailauth

_TERMS = ["ip4:192.0.2.1", "ip6:2001:db8::/32", "a", "a:h.example", "mx:h.example", "exists:h.example", "ptr:h.example", "include:inc.example", "-all"]


@given(st.lists(st.sampled_from(_TERMS), max_size=9), st.booleans())
def test_the_walk_counts_exactly_the_lookup_terms_and_redirect(terms: list[str], redirect: bool) -> None:
    # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect each cost one lookup; ip4/ip6/all none
    record = " ".join(["v=spf1", *terms, *(["redirect=r.example"] if redirect else [])])
    fake = StaticResolver(
        {
            ("d.example", "TXT"): [record],
            ("d.example", "A"): ["192.0.2.1"],
            ("h.example", "A"): ["192.0.2.2"],
            ("h.example", "MX"): ["10 h.example."],
            ("inc.example", "TXT"): ["v=spf1 -all"],
            ("r.example", "TXT"): ["v=spf1 -all"],
        }
    )
    walk = walk_spf("d.example", fake)
    redirected = redirect and "-all" not in terms  # RFC 7208 §6.1: redirect is ignored with an all
    want = sum(t.split(":")[0] in LOOKUP_MECHANISMS for t in terms) + redirected
    assert walk.lookups == want
    assert walk.void_lookups == 0


def test_walk_problems_name_the_record_that_has_them() -> None:
    fake = StaticResolver(
        {
            ("d.example", "TXT"): ["v=spf1 include:two.example include:bad.example ptr exists:%{i}.x.example mx:many.example -all"],
            ("two.example", "TXT"): ["v=spf1 -all", "v=spf1 ~all"],
            ("bad.example", "TXT"): ["v=spf1 ip4:300.0.0.1 -all"],
            ("many.example", "MX"): [f"10 mx{i}.many.example." for i in range(11)],
        }
    )
    problems = [(p.kind, p.where) for p in walk_spf("d.example", fake).problems]
    assert problems == [
        (SpfProblemKind.MULTIPLE, "two.example"),
        (SpfProblemKind.SYNTAX, "bad.example"),
        (SpfProblemKind.PTR, "d.example"),
        (SpfProblemKind.MACRO, "d.example"),
        (SpfProblemKind.TOO_MANY_MX, "d.example"),
    ]


def test_an_a_target_with_only_aaaa_is_not_void() -> None:
    fake = StaticResolver({("d.example", "TXT"): ["v=spf1 a:six.example a:none.example -all"], ("six.example", "AAAA"): ["2001:db8::1"]})
    walk = walk_spf("d.example", fake)
    assert walk.void_lookups == 1 and walk.void_names == ["none.example. A"]
