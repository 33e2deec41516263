"""A resolver that never replies is one problem, said once, not a row per record blaming the zone
(issue 11, item 12).

Real parts: a UDP socket on loopback that reads and drops every packet (a firewall's DROP), and a
port where nobody listens (the kernel answers ICMP port unreachable); `provision check` runs as a
user runs it, in a subprocess with a hang guard. Unit tests use fakes for the decisions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.check import run_check
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.resolver import Answer, Outcome, ResolverUnreachable, StaticResolver, silent_probe
from provisioner.site.model import DnsblSite
from provisioner.site.validate import load_site
from tests.check.blackhole import black_hole, closed_port
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.test_cli import PROVISION

BLACK_HOLE = "127.0.0.156"  # tests/check/conftest.py serves on .154, the bench on .155
HANG_GUARD_S = 30


@pytest.fixture
def hole_port() -> Iterator[int]:
    with black_hole(BLACK_HOLE) as port:
        yield port


@pytest.fixture(scope="module")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("dead") / "site"
    shutil.copytree(EXAMPLES / "all-in-one", site_dir, ignore=shutil.ignore_patterns("state", "build"))
    site = load_site(site_dir / "site.yaml").site
    ensure_keys(site, site_dir / "state", today=FIXED_DAY, workers=1)
    return site_dir / "site.yaml"


def _provision_check(site_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROVISION, "check", str(site_file), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=HANG_GUARD_S,
        check=False,
    )


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], nameserver: str, option: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("error: the DNS resolver ") and nameserver in line
    assert "gave no reply" in line and f"{option} IP[:PORT]" in line and "firewall" in line
    assert "Traceback" not in result.stderr
    # nothing judged, so nothing blames a zone: no table, no per-record rows
    assert result.stdout == ""
    assert "unresolved" not in result.stderr and "zone's" not in result.stderr


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_black_hole_nameserver_is_one_line_and_exit_1(hole_port: int, site_file: Path, fmt: str) -> None:
    nameserver = f"{BLACK_HOLE}:{hole_port}"
    _assert_one_clear_line(_provision_check(site_file, "--nameserver", nameserver, "--format", fmt), nameserver, "--nameserver")


def test_closed_port_nameserver_is_one_line_and_exit_1(site_file: Path) -> None:
    nameserver = f"{BLACK_HOLE}:{closed_port(BLACK_HOLE)}"
    _assert_one_clear_line(_provision_check(site_file, "--nameserver", nameserver), nameserver, "--nameserver")


def test_dead_dnsbl_nameserver_is_named_as_such(site_file: Path) -> None:
    """The DNS resolver replies, the separate --dnsbl-nameserver does not: the check stops, naming
    that option, before anything is judged."""
    loaded = load_site(site_file).site
    site = loaded.model_copy(update={"policy": loaded.policy.model_copy(update={"dnsbl": (DnsblSite(zone="bl.example"),)})})
    keys, _ = ensure_keys(site, site_file.parent / "state", today=FIXED_DAY, workers=1)
    working = StaticResolver({})
    with pytest.raises(ResolverUnreachable) as caught:
        run_check(site, keys, working, dnsbl_resolver=Silent("192.0.2.53"), today=FIXED_DAY)
    assert "--dnsbl-nameserver IP[:PORT]" in str(caught.value) and "192.0.2.53" in str(caught.value)
    assert working.asked == [(".", "NS")]  # the DNS probe, and nothing judged after the DNSBL one


class Silent:
    """A resolver that never gets a reply; counts the questions."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.asked: list[tuple[str, str]] = []

    def describe(self) -> str:
        return self.name

    def resolve(self, name: str, rdtype: str) -> Answer:
        self.asked.append((name, rdtype))
        return Answer(name, rdtype, Outcome.TIMEOUT)


def test_dead_resolver_stops_before_any_record_is_asked(site_file: Path) -> None:
    site = load_site(site_file).site
    keys, _ = ensure_keys(site, site_file.parent / "state", today=FIXED_DAY, workers=1)
    dead = Silent("127.0.0.1:5353")
    with pytest.raises(ResolverUnreachable) as caught:
        run_check(site, keys, dead, timeout=2.0, today=FIXED_DAY)
    assert dead.asked == [(".", "NS"), ("smallco.example", "SOA")]
    message = str(caught.value)
    assert "\n" not in message and "127.0.0.1:5353" in message and "--nameserver IP[:PORT]" in message


class LosesFirst:
    """One lost packet, then replies: the second question rescues a live resolver."""

    def __init__(self) -> None:
        self.inner = StaticResolver({("smallco.example", "SOA"): ["ns1.smallco.example. hostmaster.smallco.example. 1 2 3 4 5"]})
        self.lost = False

    def resolve(self, name: str, rdtype: str) -> Answer:
        if not self.lost:
            self.lost = True
            return Answer(name, rdtype, Outcome.TIMEOUT)
        return self.inner.resolve(name, rdtype)


@pytest.mark.parametrize(
    ("resolver", "silent"),
    [
        (StaticResolver({}), 0),  # NXDOMAIN for ". NS" is a reply (an authoritative server refusing, say)
        (StaticResolver({(".", "NS"): Outcome.SERVFAIL}), 0),  # REFUSED/SERVFAIL is a reply too
        (LosesFirst(), 0),
        (StaticResolver({(".", "NS"): Outcome.TIMEOUT, ("smallco.example", "SOA"): Outcome.TIMEOUT}), 2),
    ],
)
def test_probe_needs_no_reply_to_both_questions(resolver: object, silent: int) -> None:
    assert len(silent_probe(resolver, "smallco.example")) == silent  # type: ignore[arg-type]


def test_zone_servers_dead_but_resolver_alive_is_judged_per_record() -> None:
    """The resolver replies to `. NS`, only the site's names time out: the zone's own servers are
    the cause, so the check goes on and the rows say so (no false 'resolver unreachable')."""
    resolver = StaticResolver({(".", "NS"): ["a.root-servers.net."], ("smallco.example", "SOA"): Outcome.TIMEOUT})
    assert silent_probe(resolver, "smallco.example") == []


@pytest.mark.parametrize(("outcome", "cause"), [(Outcome.TIMEOUT, "zone's nameservers answer"), (Outcome.SERVFAIL, "delegation and DNSSEC")])
def test_a_name_that_fails_on_a_live_resolver_blames_the_name(site_file: Path, outcome: Outcome, cause: str) -> None:
    site = load_site(site_file).site
    keys, _ = ensure_keys(site, site_file.parent / "state", today=FIXED_DAY, workers=1)
    resolver = StaticResolver({("_dmarc.smallco.example", "TXT"): outcome})
    report = run_check(site, keys, resolver, today=FIXED_DAY)
    [finding] = [f for f in report.findings if f.id == "dmarc.unresolved"]
    assert cause in finding.advice
