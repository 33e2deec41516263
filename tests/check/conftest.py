"""The generated zones, reverse zones and a stand-in blocklist, served by a real nsd on
127.0.0.154:53 (tests/dns uses .153). Every resolver here points at that address only: no test
path reaches the system resolver."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.check import Report, run_check
from provisioner.dns.formats import zone_text
from provisioner.dns.records import RecordSet, site_records
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.model import DnsblSite, Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop

CHECK_ADDRESS = "127.0.0.154"
BL_ZONE = "bl.test"


def blocklist_zone(extra: str = "") -> str:
    """RFC 5782 §5 test entries: 127.0.0.2 listed, 127.0.0.1 not; nothing for the site's addresses."""
    return (
        f"$ORIGIN {BL_ZONE}.\n$TTL 3600\n"
        f"@ 3600 IN SOA ns1.{BL_ZONE}. hostmaster.{BL_ZONE}. 1 7200 3600 1209600 3600\n"
        f"@ 3600 IN NS ns1.{BL_ZONE}.\n"
        '2.0.0.127 3600 IN A 127.0.0.2\n2.0.0.127 3600 IN TXT "test entry"\n' + extra
    )


@dataclass
class Example:
    site: Site
    keys: KeyState
    records: RecordSet
    zones: dict[str, str]
    workdir: Path


def build_example(name: str, workdir: Path) -> Example:
    site = load_site(EXAMPLES / name / "site.yaml").site
    site = site.model_copy(update={"policy": site.policy.model_copy(update={"dnsbl": (DnsblSite(zone=BL_ZONE),)})})
    keys, _ = ensure_keys(site, workdir / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    zones[BL_ZONE] = blocklist_zone()
    return Example(site, keys, records, zones, workdir)


def resolver() -> DnsResolver:
    return DnsResolver([Nameserver(CHECK_ADDRESS, 53)], timeout=2.0)


@contextmanager
def serving(zones: dict[str, str], workdir: Path) -> Iterator[None]:
    if shutil.which("nsd") is None:
        pytest.fail("nsd is not installed: run tests/run.sh, which installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    proc = serve(zones, workdir, CHECK_ADDRESS, 53)
    try:
        yield
    finally:
        stop(proc)


def check(example: Example, zones: dict[str, str], workdir: Path) -> Report:
    with serving(zones, workdir):
        return run_check(example.site, example.keys, resolver(), dnsbl_resolver=resolver(), concurrency=8, today=FIXED_DAY)


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Callable[[str], Example]:
    cache: dict[str, Example] = {}

    def get(name: str) -> Example:
        if name not in cache:
            cache[name] = build_example(name, tmp_path_factory.mktemp(f"check-{name}"))
        return cache[name]

    return get


@pytest.fixture(autouse=True)
def no_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test path that would fall back to the system resolver (/etc/resolv.conf) or
    to dnspython's module-level default resolver (which pyspf's own lookup uses)."""
    import dns.resolver

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to use the system resolver")

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", refuse)
    monkeypatch.setattr(dns.resolver, "resolve", refuse)
    monkeypatch.setattr(dns.resolver, "query", refuse)
    monkeypatch.setattr(dns.resolver, "get_default_resolver", refuse)


def drop(zone: str, name: str, rtype: str, contains: str = "") -> str:
    """The zone text without the records of `name` and `rtype` (whose data contains `contains`)."""
    kept = []
    for line in zone.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == name + "." and fields[3] == rtype and contains in line:
            continue
        kept.append(line)
    assert len(kept) < len(zone.splitlines()), f"no {name} {rtype} record to drop"
    return "\n".join(kept) + "\n"


def add(zone: str, *lines: str) -> str:
    return zone + "\n".join(lines) + "\n"
