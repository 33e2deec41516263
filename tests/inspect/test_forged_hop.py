"""Issue 11 item 1: a false PASS through a forged hop. A sender whose address the reader has not
declared (a client in relay.networks, anybody when the MX sees a NAT or load balancer's private
address) writes `Received: from mail.<bank> (... [<bank's address>]) by <our MX>` and an
`Authentication-Results: <our MX>; spf=pass; dmarc=pass` above it. Neither may count: the border
is the hop from the undeclared address, and with --verify SPF and reverse DNS are checked for
that address only. Trust is extended by declared addresses (--site hosts, --trust-address,
loopback), never by private-ness (style rule 15).

--verify runs against the real nsd of conftest (smallco.example's SPF authorises 192.0.2.10, the
address the forged line claims); the class test uses the table resolver."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.inspect import EXIT, Trust, Verdict, inspect_message, parse_message
from provisioner.inspect.analyze import Evidence, Inspection
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.inspect.conftest import DOMAIN, INSPECT_ADDRESS, OUR_IP, OUR_MX, RECIPIENT_MX, World, compose, received, sign, table

T0 = "Mon, 23 Nov 2026 10:00:01 +0000"
T1 = "Mon, 23 Nov 2026 10:00:02 +0000"
T2 = "Mon, 23 Nov 2026 10:00:03 +0000"
STORE = "store.recipient.test"  # the recipient's mailbox server, behind its MX
MULTI = load_site(EXAMPLES / "multi-host" / "site.yaml").site  # relay.networks: [192.168.10.0/24]; out1 relays


def forged_results(by: str) -> str:
    return f"Authentication-Results: {by}; spf=pass smtp.mailfrom=alice@{DOMAIN}; dmarc=pass header.from={DOMAIN}\r\n"


def assemble(entry: list[bytes], *, below: list[bytes], message: bytes, mail_from: str = f"alice@{DOMAIN}") -> bytes:
    """Return-Path (written at final delivery), the lines the recipient's servers wrote (newest
    first), then what the sender wrote itself, then the message."""
    return f"Return-Path: <{mail_from}>\r\n".encode() + b"".join(entry) + b"".join(below) + message


@dataclass(frozen=True)
class Scenario:
    trust: Trust
    entry: list[bytes]  # what the recipient's own servers wrote, newest first
    sender: str  # the undeclared address the message really came from
    by: str  # the trusted name the forgery writes

    def forged(self, with_results: bool) -> bytes:
        below = [forged_results(self.by).encode()] if with_results else []
        below.append(received(OUR_MX, OUR_IP, OUR_MX, self.by, T0))  # "from mail.smallco.example (... [192.0.2.10]) by <our MX>"
        return assemble(self.entry, below=below, message=compose(f"Smallco Billing <alice@{DOMAIN}>"))


TO_THE_MX = Trust.of([RECIPIENT_MX])
SCENARIOS = {
    # An office PC in the site's relay.networks hands the message to out1, which relays to mx1:
    # relay.networks may relay, they are not servers whose lines are believed.
    "relay-network client": Scenario(
        Trust.from_site(MULTI),
        [
            received("out1.acme.example", "192.0.2.11", "out1.acme.example", "mx1.acme.example", T2),
            received("pc17.office", "192.168.10.50", "unknown", "out1.acme.example", T1, protocol="ESMTP"),
        ],
        "192.168.10.50",
        "mx1.acme.example",
    ),
    # The MX sits behind a NAT that rewrites every incoming connection to the router's address.
    "SNAT": Scenario(TO_THE_MX, [received(OUR_MX, "10.0.0.1", "unknown", RECIPIENT_MX, T1)], "10.0.0.1", RECIPIENT_MX),
    "carrier NAT": Scenario(TO_THE_MX, [received(OUR_MX, "100.64.3.4", "unknown", RECIPIENT_MX, T1)], "100.64.3.4", RECIPIENT_MX),
    # A load balancer in front of the MX connects from its own private address.
    "load balancer": Scenario(TO_THE_MX, [received(OUR_MX, "172.16.0.5", "unknown", RECIPIENT_MX, T1)], "172.16.0.5", RECIPIENT_MX),
    "load balancer (IPv6 ULA)": Scenario(TO_THE_MX, [received(OUR_MX, "fd00:5::1", "unknown", RECIPIENT_MX, T1)], "fd00:5::1", RECIPIENT_MX),
}


def judge(raw: bytes, trust: Trust, world: World | None) -> Inspection:
    return inspect_message(parse_message("forged.eml", raw), trust, world.resolver() if world else None)


@pytest.mark.parametrize("verify", [False, True], ids=["recorded", "verify"])
@pytest.mark.parametrize("with_results", [True, False], ids=["forged A-R", "no A-R"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_forged_hop_below_an_undeclared_sender_is_never_a_pass(served: World, name: str, with_results: bool, verify: bool) -> None:
    scenario = SCENARIOS[name]
    got = judge(scenario.forged(with_results), scenario.trust, served if verify else None)
    assert got.verdict is not Verdict.PASS and EXIT[got.verdict] != 0, got.summary
    assert got.border is not None and got.border.ip == scenario.sender and not got.border_assumed
    assert not any(h.trusted for h in got.authentication_results)  # the forged field stands below the border
    if verify:
        # SPF and FCrDNS for the address the MX saw, never the 192.0.2.10 the sender wrote
        assert got.spf is not None and got.spf.address == scenario.sender and got.spf.result.value != "pass"
        assert got.reverse is not None and got.reverse.address == scenario.sender
        assert got.verdict is Verdict.FAIL
    else:
        assert got.verdict is Verdict.UNKNOWN and got.evidence is Evidence.NONE
    assert any(f"--trust-address {scenario.sender}" in n.en for n in got.notes)  # every sender here is private: say how to declare it


@pytest.mark.parametrize("verify", [False, True], ids=["recorded", "verify"])
@pytest.mark.parametrize("name", ["SNAT", "load balancer"])
def test_declaring_an_edge_nat_makes_the_forgery_count(served: World, name: str, verify: bool) -> None:
    """Why the docs say never to declare a NAT or balancer that carries Internet traffic: the
    forged parts are what a PASS rests on once the hop from it is declared (and so these tests
    can fail)."""
    scenario = SCENARIOS[name]
    trust = Trust.of(scenario.trust.names, [scenario.sender])
    got = judge(scenario.forged(with_results=not verify), trust, served if verify else None)
    assert got.verdict is Verdict.PASS and got.border is not None and got.border.ip == OUR_IP


# -- genuine mail through a declared internal hop


def internal(world: World, address: str, *, signed: bool) -> bytes:
    """smallco.example's server hands the message to the recipient's MX, which records its
    results and passes it on to the mailbox server through a load balancer or NAT at `address`."""
    message = compose(f"alice@{DOMAIN}")
    if signed:
        message = sign(message, DOMAIN, world.our_selector, world.our_key)
    entry = [
        received(RECIPIENT_MX, address, "unknown", STORE, T2, protocol="ESMTP"),
        f"Authentication-Results: {RECIPIENT_MX}; spf=pass smtp.mailfrom=alice@{DOMAIN}; dmarc=pass header.from={DOMAIN}\r\n".encode(),
        received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, T1),
    ]
    return assemble(entry, below=[], message=message)


@pytest.mark.parametrize("verify", [False, True], ids=["recorded", "verify"])
@pytest.mark.parametrize(
    ("address", "declared"), [("10.0.0.5", "10.0.0.5"), ("10.0.0.5", "10.0.0.0/24"), ("100.64.0.7", "100.64.0.0/16"), ("fd00:5::1", "fd00:5::/64")]
)
def test_genuine_mail_through_a_declared_load_balancer_or_nat_passes(served: World, address: str, declared: str, verify: bool) -> None:
    got = judge(internal(served, address, signed=False), Trust.of([RECIPIENT_MX, STORE], [declared]), served if verify else None)
    assert got.verdict is Verdict.PASS and got.border is not None and got.border.ip == OUR_IP
    assert [h.trusted for h in got.authentication_results] == [True]
    if verify:
        assert got.spf is not None and (got.spf.address, got.spf.result.value) == (OUR_IP, "pass")


def test_the_same_mail_with_the_hop_undeclared_rests_on_its_signature_only(served: World) -> None:
    """Before this rule the private 10.0.0.5 was taken as ours; now it must be declared. Without
    it the border is that hop: SPF-only mail is no longer a pass, signed mail still is."""
    trust = Trust.of([RECIPIENT_MX, STORE])
    unsigned = judge(internal(served, "10.0.0.5", signed=False), trust, served)
    assert unsigned.verdict is not Verdict.PASS and unsigned.border is not None and unsigned.border.ip == "10.0.0.5"
    assert any("--trust-address 10.0.0.5" in n.en for n in unsigned.notes)
    assert judge(internal(served, "10.0.0.5", signed=False), trust, None).verdict is Verdict.UNKNOWN
    assert judge(internal(served, "10.0.0.5", signed=True), trust, served).verdict is Verdict.PASS  # DKIM does not depend on the path


def test_an_ipv4_mapped_address_matches_its_declared_network() -> None:
    assert Trust.of(addresses=["10.0.0.0/24"]).declares("::ffff:10.0.0.5")
    assert not Trust.of(addresses=["10.0.0.0/24"]).declares("10.0.1.5")
    assert Trust().declares("127.0.0.1") and Trust().declares("::1") and not Trust().declares("10.0.0.1")


# -- the class: whatever stands below an undeclared sender does not move the verdict


DECLARED = "10.9.0.0/24"
CLASS_TRUST = Trust.of(["mx.me.test", "store.me.test"], [DECLARED])
CLASS_DATE = "Mon, 23 Nov 2026 10:00:00 +0000"

_undeclared = st.one_of(
    st.builds("10.{}.{}.{}".format, st.integers(0, 255).filter(lambda n: n != 9), st.integers(0, 255), st.integers(1, 254)),
    st.builds("192.168.{}.{}".format, st.integers(0, 255), st.integers(1, 254)),
    st.builds("172.{}.{}.{}".format, st.integers(16, 31), st.integers(0, 255), st.integers(1, 254)),
    st.builds("100.{}.{}.{}".format, st.integers(64, 127), st.integers(0, 255), st.integers(1, 254)),
    st.sampled_from(["169.254.1.1", "fd00::1", "fe80::1", "::ffff:192.168.1.1", "198.51.100.99", "203.0.113.7", "2001:db8::7"]),
)
_by = st.sampled_from(["mx.me.test", "store.me.test", "localhost", "out.example.org"])
_forged_received = st.builds(
    lambda ip, by, proto: (
        f"Received: from out.example.org (out.example.org [{ip}]) by {by} with {proto} id F; {CLASS_DATE}"
        if ip
        else f"Received: from out.example.org by {by} with {proto} id F; {CLASS_DATE}"
    ),
    st.sampled_from(["192.0.2.1", "127.0.0.1", "10.9.0.3", "::1", ""]),  # example.org's SPF address, loopback, a declared one, none
    _by,
    st.sampled_from(["ESMTPS", "ESMTPSA", "LMTP"]),
)
_forged_results = st.sampled_from(
    [
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=a@example.org; dmarc=pass header.from=example.org",
        "Authentication-Results: store.me.test; dmarc=pass header.from=example.org",
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=a@example.org",
        "Return-Path: <a@example.org>",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2),
    _undeclared,
    st.lists(st.one_of(_forged_received, _forged_results), min_size=1, max_size=6),
    st.booleans(),
)
def test_nothing_below_an_undeclared_sender_moves_the_verdict(declared_hops: int, sender: str, below: list[str], verify: bool) -> None:
    top = [f"Received: from r{i} (r{i} [10.9.0.{i + 1}]) by store.me.test with ESMTP id D{i}; {CLASS_DATE}" for i in range(declared_hops)]
    entry = f"Received: from out.example.org (unknown [{sender}]) by mx.me.test with ESMTPS id E; {CLASS_DATE}"
    head = ["Return-Path: <a@example.org>", *top, entry]
    tail = ["From: a@example.org", "Subject: hi", f"Date: {CLASS_DATE}"]
    alone = inspect_message(parse_message("m", _message(*head, *tail)), CLASS_TRUST, table() if verify else None)
    got = inspect_message(parse_message("m", _message(*head, *below, *tail)), CLASS_TRUST, table() if verify else None)
    assert got.verdict is not Verdict.PASS
    assert (got.verdict, got.border.ip if got.border else None) == (alone.verdict, alone.border.ip if alone.border else None)
    assert (got.spf.address if got.spf else None) == (alone.spf.address if alone.spf else None) == (str(ipaddress.ip_address(sender)) if verify else None)
    assert not any(h.trusted for h in got.authentication_results)


def _message(*headers: str) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\nhi\r\n").encode()


# -- the command line


PROVISION = [sys.executable, "-m", "provisioner.cli", "inspect"]


def cli(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*PROVISION, "-", *args], capture_output=True, input=stdin, check=False, timeout=60)


def test_cli_trust_address_declares_the_hop_and_nothing_else_does(served: World, tmp_path: Path) -> None:
    snat = SCENARIOS["SNAT"].forged(with_results=True)
    assert cli("--trust", RECIPIENT_MX, stdin=snat).returncode == 3  # recorded, but below the border: not counted
    assert cli("--trust", RECIPIENT_MX, "--verify", "--nameserver", INSPECT_ADDRESS, stdin=snat).returncode == 2
    genuine = internal(served, "10.0.0.5", signed=False)
    assert cli("--trust", RECIPIENT_MX, "--trust", STORE, stdin=genuine).returncode == 3
    done = cli("--trust", RECIPIENT_MX, "--trust", STORE, "--trust-address", "10.0.0.0/24", stdin=genuine)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    # with --site, the option adds to the site's hosts
    relay = SCENARIOS["relay-network client"].forged(with_results=True)
    assert cli("--site", str(EXAMPLES / "multi-host" / "site.yaml"), stdin=relay).returncode == 3


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nope", "error: --trust-address: 'nope' is not an IP address or network (write 10.0.0.5 or 10.0.0.0/24)"),
        ("10.0.0.5/24", "error: --trust-address: '10.0.0.5/24' has host bits set (did you mean 10.0.0.0/24?)"),
        ("0.0.0.0/0", "error: --trust-address: 0.0.0.0/0 is far too wide: every sender in it would be believed"),
        ("::/0", "error: --trust-address: ::/0 is far too wide"),
    ],
)
def test_cli_refuses_a_bad_trust_address(value: str, says: str) -> None:
    done = cli("--trust-address", value, stdin=b"From: a@example.org\r\n\r\nhi\r\n")
    err = done.stderr.decode()
    assert done.returncode == 1 and err.startswith(says) and "Traceback" not in err and done.stdout == b""
