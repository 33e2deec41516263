"""`provision check` against a real nsd serving the generated zones: all pass, then one break at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.check import Report, Severity, report_json
from tests.check.conftest import BL_ZONE, Example, add, blocklist_zone, check, drop


def ids(report: Report, severity: Severity | None = None) -> set[str]:
    return {f.id for f in report.findings if severity is None or f.severity is severity}


@pytest.mark.parametrize("name", ["all-in-one", "multi-host"])
def test_generated_zones_pass(name: str, examples, tmp_path: Path) -> None:
    example: Example = examples(name)
    report = check(example, example.zones, tmp_path)
    problems = [f for f in report.findings if not f.passed]
    assert problems == []
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 0
    found = ids(report)
    for expected in (
        "mx.match",
        "spf.match",
        "spf.authorized",
        "spf.lookups",
        "dkim.match",
        "dmarc.match",
        "dmarc.rua-accepts-mail",
        "ptr.match",
        "dnsbl.clean",
        "address.match",
    ):
        assert expected in found, expected
    # every declared host address was looked up on the blocklist, IPv6 included
    dnsbl = {f.subject for f in report.findings if f.id == "dnsbl.clean"}
    assert f"2001:db8::10 @ {BL_ZONE}" in dnsbl
    doc = report_json(report)
    assert doc["exit_status"] == 0 and doc["summary"]["error"] == 0


def test_multi_host_dmarc_report_authorisation_is_checked(examples, tmp_path: Path) -> None:
    example = examples("multi-host")
    zones = dict(example.zones)
    zones["acme.example"] = drop(zones["acme.example"], "xn--r8jz45g.jp._report._dmarc.acme.example", "TXT")
    report = check(example, zones, tmp_path)
    assert "dmarc.report-unauthorized" in ids(report, Severity.ERROR)
    assert report.exit_status() == 1


AIO = "smallco.example"
AIO_REVERSE = "2.0.192.in-addr.arpa"


def _dkim_line(zone: str, selector: str) -> str:
    return next(line for line in zone.splitlines() if line.startswith(f"{selector}._domainkey.{AIO}. "))


def _break_dkim_missing(zones: dict[str, str]) -> None:
    zones[AIO] = drop(zones[AIO], f"s202611a._domainkey.{AIO}", "TXT")


def _break_dkim_not_ours(zones: dict[str, str]) -> None:
    # the signing selector publishes another key (the standby one's)
    other = _dkim_line(zones[AIO], "s202611b").split(" TXT ", 1)[1]
    zones[AIO] = add(drop(zones[AIO], f"s202611a._domainkey.{AIO}", "TXT"), f"s202611a._domainkey.{AIO}. 3600 IN TXT {other}")


def _break_two_spf(zones: dict[str, str]) -> None:
    zones[AIO] = add(zones[AIO], f'{AIO}. 3600 IN TXT "v=spf1 mx -all"')


def _break_spf_lookups(zones: dict[str, str]) -> None:
    chain = [f'i{n}.{AIO}. 3600 IN TXT "v=spf1 include:i{n + 1}.{AIO} -all"' for n in range(1, 11)]
    chain.append(f'i11.{AIO}. 3600 IN TXT "v=spf1 -all"')
    zones[AIO] = add(
        drop(zones[AIO], AIO, "TXT", "v=spf1"),
        f'{AIO}. 3600 IN TXT "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 include:i1.{AIO} -all"',
        *chain,
    )


def _break_dmarc_missing(zones: dict[str, str]) -> None:
    zones[AIO] = drop(zones[AIO], f"_dmarc.{AIO}", "TXT")


def _break_ptr(zones: dict[str, str]) -> None:
    zones[AIO_REVERSE] = add(drop(zones[AIO_REVERSE], f"10.{AIO_REVERSE}", "PTR"), f"10.{AIO_REVERSE}. 3600 IN PTR host-10.isp.example.")


BREAKS = {
    "dkim.missing": _break_dkim_missing,
    "dkim.mismatch": _break_dkim_not_ours,
    "spf.multiple": _break_two_spf,
    "spf.too-many-lookups": _break_spf_lookups,
    "dmarc.missing": _break_dmarc_missing,
    "ptr.mismatch": _break_ptr,
}


@pytest.mark.parametrize("finding_id", sorted(BREAKS))
def test_one_break_is_an_error(finding_id: str, examples, tmp_path: Path) -> None:
    example = examples("all-in-one")
    zones = dict(example.zones)
    BREAKS[finding_id](zones)
    report = check(example, zones, tmp_path)
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    assert finding_id in {f.id for f in errors}, [(f.id, f.seen) for f in errors]
    assert report.exit_status() == 1
    broken = next(f for f in errors if f.id == finding_id)
    assert broken.advice and broken.domain in (AIO, "mail.smallco.example")


def test_ptr_elsewhere_is_not_forward_confirmed(examples, tmp_path: Path) -> None:
    example = examples("all-in-one")
    zones = dict(example.zones)
    _break_ptr(zones)
    report = check(example, zones, tmp_path)
    assert {"ptr.mismatch", "ptr.not-confirmed"} <= ids(report, Severity.ERROR)


def test_backup_mx_missing(examples, tmp_path: Path) -> None:
    example = examples("multi-host")
    zones = dict(example.zones)
    zones["acme.example"] = drop(zones["acme.example"], "acme.example", "MX", "mx2.acme.example")
    report = check(example, zones, tmp_path)
    missing = [f for f in report.findings if f.id == "mx.missing"]
    assert [(f.domain, f.expected) for f in missing] == [("acme.example", "20 mx2.acme.example.")]
    assert missing[0].severity is Severity.ERROR
    assert missing[0].advice == "add: acme.example. 3600 IN MX 20 mx2.acme.example."
    assert report.exit_status() == 1


@pytest.mark.parametrize("code", range(2, 12))
def test_listed_address(code: int, examples, tmp_path: Path) -> None:
    example = examples("all-in-one")
    zones = dict(example.zones)
    zones[BL_ZONE] = blocklist_zone(f"10.2.0.192 3600 IN A 127.0.0.{code}\n")
    report = check(example, zones, tmp_path)
    listed = [f for f in report.findings if f.id == "dnsbl.listed"]
    assert [(f.subject, f.severity) for f in listed] == [(f"192.0.2.10 @ {BL_ZONE}", Severity.ERROR)]
    assert f"127.0.0.{code}" in listed[0].seen
    assert report.exit_status() == 1


def test_listed_ipv6_address_in_nibble_form(examples, tmp_path: Path) -> None:
    example = examples("all-in-one")
    zones = dict(example.zones)
    nibbles = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
    zones[BL_ZONE] = blocklist_zone(f"{nibbles} 3600 IN A 127.0.0.4\n")
    report = check(example, zones, tmp_path)
    assert [f.subject for f in report.findings if f.id == "dnsbl.listed"] == [f"2001:db8::10 @ {BL_ZONE}"]


def test_public_resolver_answer_is_not_a_listing(examples, tmp_path: Path) -> None:
    example = examples("all-in-one")
    zones = dict(example.zones)
    zones[BL_ZONE] = blocklist_zone("10.2.0.192 3600 IN A 127.255.255.254\n")
    report = check(example, zones, tmp_path)
    assert "dnsbl.listed" not in ids(report)
    unknown = [f for f in report.findings if f.id == "dnsbl.unknown"]
    assert len(unknown) == 1 and unknown[0].severity is Severity.WARNING
    assert unknown[0].seen.startswith("could not determine (public resolver or query limit)")
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1
