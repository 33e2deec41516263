"""mailauth/resolver.py: query names, nameserver parsing, the table resolver. No network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.mailauth.resolver import Answer, CachingResolver, Nameserver, Outcome, StaticResolver, absolute, dnsbl_name, reverse_name


def test_dnsbl_names_are_absolute_and_ipv6_is_nibbles() -> None:
    assert dnsbl_name("192.0.2.10", "zen.spamhaus.org") == "10.2.0.192.zen.spamhaus.org."
    assert dnsbl_name("127.0.0.2", "zen.spamhaus.org.") == "2.0.0.127.zen.spamhaus.org."
    v6 = dnsbl_name("2001:db8::10", "zen.spamhaus.org")
    assert v6 == "0.1.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.zen.spamhaus.org."
    assert len(v6.removesuffix("zen.spamhaus.org.").strip(".").split(".")) == 32  # nibbles, not 16-bit groups
    assert reverse_name("192.0.2.10") == "10.2.0.192.in-addr.arpa."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", Nameserver("127.0.0.1", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("::1", Nameserver("::1", 53)),
        ("[::1]:5300", Nameserver("::1", 5300)),
    ],
)
def test_nameserver_parse(text: str, expected: Nameserver) -> None:
    assert Nameserver.parse(text) == expected


@pytest.mark.parametrize("text", ["ns.example", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"])
def test_nameserver_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        Nameserver.parse(text)


def test_static_resolver_outcomes() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["x"], ("t.example", "A"): Outcome.TIMEOUT})
    assert fake.resolve("a.example", "TXT").records == ("x",)
    assert fake.resolve("a.example", "MX").outcome is Outcome.NODATA
    assert fake.resolve("b.example", "A").outcome is Outcome.NXDOMAIN
    assert fake.resolve("t.example", "A").failed
    assert all(name.endswith(".") for name, _ in fake.asked)


# ---------------------------------------------------------------------------- added with the move to mailauth


@pytest.mark.parametrize("outcome", list(Outcome))
def test_an_answer_is_exactly_one_of_ok_void_failed_and_says_which(outcome: Outcome) -> None:
    answer = Answer("a.example.", "TXT", outcome, ("v=spf1 -all",) if outcome is Outcome.ANSWER else (), "why")
    assert [answer.ok, answer.void, answer.failed].count(True) == 1
    said = answer.describe()
    assert said == "v=spf1 -all" if answer.ok else "v=spf1" not in said
    assert ("why" in said) is answer.failed  # a failure carries its detail; NXDOMAIN/NODATA need none


def test_the_caching_resolver_asks_each_question_once_whatever_its_spelling() -> None:
    inner = StaticResolver({("a.example", "TXT"): ["x"]})
    cached = CachingResolver(inner)
    answers = [cached.resolve(name, rdtype) for name in ("a.example", "A.Example.", "a.example.") for rdtype in ("TXT", "txt")]
    assert {a.records for a in answers} == {("x",)}
    assert inner.asked == [("a.example.", "TXT")]
    assert cached.resolve("b.example", "TXT").outcome is Outcome.NXDOMAIN and len(inner.asked) == 2
    assert CachingResolver(inner).resolve("a.example", "TXT") is not answers[0]  # a new run asks again


def test_questions_are_absolute() -> None:
    assert absolute("a.example") == absolute("a.example.") == "a.example."


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(min_value=1, max_value=65535))
def test_a_nameserver_reads_back_what_it_prints(ip: object, port: int) -> None:
    server = Nameserver(str(ip), port)
    assert Nameserver.parse(str(server)) == server
