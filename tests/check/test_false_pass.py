"""A PASS must be true: records a receiver would use against us, or ignore, are errors.

Unit tests on the judge (no network), property tests over the class, then one case each against
a real nsd serving the generated zones (issue 11, item 11).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.check import Severity
from provisioner.check.findings import Category, Finding
from provisioner.check.judge import judge_dkim, judge_mx, judge_records
from provisioner.dns.records import Level, Purpose, Record
from provisioner.mailauth.grammar import DkimRecord, parse_dkim
from provisioner.mailauth.resolver import Answer, Outcome
from tests.check.conftest import Example, add, check, drop

DOMAIN = "a.example"
DKIM_NAME = f"s1._domainkey.{DOMAIN}"
P = "MCowBQYDK2VwAyEA" + "A" * 43 + "="  # any base64; the bytes are compared, not parsed, for a match
ED_P = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # RFC 8463 §A.2: a 32-octet ed25519 key


def _mx_record(value: str) -> Record:
    return Record(DOMAIN, DOMAIN, "MX", value, 3600, Level.REQUIRED, Purpose("", ""))


def _mx_answer(*values: str) -> Answer:
    return Answer(DOMAIN + ".", "MX", Outcome.ANSWER, values)


def _by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


# ---------------------------------------------------------------------------- MX (RFC 5321 §5.1)


@pytest.mark.parametrize(
    ("published", "fid", "severity"),
    [
        ("5 evil.example.", "mx.unexpected-preferred", Severity.ERROR),  # tried before ours
        ("10 evil.example.", "mx.unexpected-preferred", Severity.ERROR),  # shares ours at random
        ("15 evil.example.", "mx.unexpected-preferred", Severity.ERROR),  # before our backup
        ("20 evil.example.", "mx.unexpected-preferred", Severity.ERROR),  # shares our backup
        ("30 old-backup.example.", "mx.unexpected", Severity.WARNING),  # only after all of ours
    ],
)
def test_undeclared_mx_before_ours_is_an_error(published: str, fid: str, severity: Severity) -> None:
    expected = [_mx_record("10 mx1.a.example."), _mx_record("20 mx2.a.example.")]
    findings = judge_mx(DOMAIN, expected, _mx_answer("10 mx1.a.example.", "20 mx2.a.example.", published))
    got = _by_id(findings)
    assert got[fid].severity is severity
    assert published.split()[1] in got[fid].seen and "remove" in got[fid].advice
    assert {f.id for f in findings} == {"mx.match", fid}


def test_undeclared_mx_counts_against_our_published_preference() -> None:
    """Ours declared at 10 but published at 50: an undeclared 20 is tried before it."""
    findings = judge_mx(DOMAIN, [_mx_record("10 mx1.a.example.")], _mx_answer("50 mx1.a.example.", "20 evil.example."))
    assert _by_id(findings)["mx.unexpected-preferred"].severity is Severity.ERROR


@given(
    ours=st.lists(st.integers(0, 100), min_size=1, max_size=3),
    theirs=st.lists(st.integers(0, 100), min_size=1, max_size=3),
)
def test_any_undeclared_mx_tried_no_later_than_ours_fails_the_check(ours: list[int], theirs: list[int]) -> None:
    expected = [_mx_record(f"{p} mx{i}.a.example.") for i, p in enumerate(ours)]
    published = [r.value for r in expected] + [f"{p} evil{i}.example." for i, p in enumerate(theirs)]
    findings = judge_mx(DOMAIN, expected, _mx_answer(*published))
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if min(theirs) <= max(ours):
        assert [f.id for f in errors] == ["mx.unexpected-preferred"]
    else:
        assert errors == [] and "mx.unexpected" in {f.id for f in findings}


# ---------------------------------------------------------------------------- DKIM (RFC 6376 §3.6.1, RFC 8301)


def _dkim(value: str) -> list[Finding]:
    expected = Record(DOMAIN, DKIM_NAME, "TXT", f"v=DKIM1; k=ed25519; p={ED_P}", 3600, Level.REQUIRED, Purpose("", ""))
    return judge_dkim(DOMAIN, expected, Answer(DKIM_NAME + ".", "TXT", Outcome.ANSWER, (value,)))


@pytest.mark.parametrize(
    ("tags", "fid"),
    [
        ("s=tlsrpt;", "dkim.not-for-email"),
        ("s=EMAIL;", "dkim.not-for-email"),  # RFC 6376 §3.2: values are case-sensitive
        ("s=;", "dkim.not-for-email"),
        ("h=sha1;", "dkim.no-sha256"),
        ("h=sha1 : md5;", "dkim.no-sha256"),
    ],
)
def test_dkim_key_verifiers_ignore_is_an_error_not_a_match(tags: str, fid: str) -> None:
    findings = _dkim(f"v=DKIM1; k=ed25519; {tags} p={ED_P}")
    got = _by_id(findings)
    assert "dkim.match" not in got
    assert got[fid].severity is Severity.ERROR
    assert "RFC" in got[fid].advice and f"p={ED_P}" in got[fid].advice


@pytest.mark.parametrize("tags", ["", "s=email;", "s=*;", "s=tlsrpt:email;", "s = email : x ;", "h=sha256;", "h=sha1:sha256;", "s=*; h=sha256;"])
def test_dkim_key_for_email_with_sha256_matches(tags: str) -> None:
    assert [(f.id, f.severity) for f in _dkim(f"v=DKIM1; k=ed25519; {tags} p={ED_P}")] == [("dkim.match", Severity.PASS)]


_ITEM = st.sampled_from(["email", "*", "tlsrpt", "Email", "x-foo", "sha1", "sha256", "SHA256", "md5"])


@given(services=st.lists(_ITEM, max_size=3), hashes=st.lists(_ITEM, max_size=3), with_s=st.booleans(), with_h=st.booleans())
def test_dkim_match_only_when_verifiers_can_use_the_key(services: list[str], hashes: list[str], with_s: bool, with_h: bool) -> None:
    tags = (f"s={':'.join(services)}; " if with_s else "") + (f"h={':'.join(hashes)}; " if with_h else "")
    parsed = parse_dkim(f"v=DKIM1; k=ed25519; {tags}p={ED_P}")
    assert isinstance(parsed, DkimRecord)
    usable = (not with_s or "email" in services or "*" in services) and (not with_h or "sha256" in hashes)
    assert (parsed.for_email and parsed.allows_sha256) is usable
    ids = {f.id for f in _dkim(parsed.text)}
    assert ("dkim.match" in ids) is usable
    assert not usable or ids == {"dkim.match"}


# ---------------------------------------------------------------------------- one policy record (RFC 8461 §3.1, RFC 8460 §3)


@pytest.mark.parametrize(
    ("category", "prefix", "name", "ours", "other"),
    [
        (Category.MTA_STS, "mta-sts", f"_mta-sts.{DOMAIN}", "v=STSv1; id=1", "v=STSv1; id=2"),
        (Category.TLS_RPT, "tls-rpt", f"_smtp._tls.{DOMAIN}", "v=TLSRPTv1; rua=mailto:t@a.example", "v=TLSRPTv1; rua=mailto:x@evil.example"),
    ],
)
def test_a_second_policy_record_voids_both(category: Category, prefix: str, name: str, ours: str, other: str) -> None:
    expected = [Record(DOMAIN, name, "TXT", ours, 3600, Level.RECOMMENDED, Purpose("", ""))]
    one = judge_records(DOMAIN, category, prefix, expected, Answer(name + ".", "TXT", Outcome.ANSWER, (ours, "google-site-verification=x")), single=True)
    assert [(f.id, f.severity) for f in one] == [(f"{prefix}.match", Severity.PASS)]
    two = judge_records(DOMAIN, category, prefix, expected, Answer(name + ".", "TXT", Outcome.ANSWER, (ours, other)), single=True)
    assert [(f.id, f.severity) for f in two] == [(f"{prefix}.multiple", Severity.ERROR)]
    assert two[0].advice == f'keep one record: {name}. 3600 IN TXT "{ours}"'


# ---------------------------------------------------------------------------- served by nsd

AIO = "smallco.example"
SELECTOR = f"s202611a._domainkey.{AIO}"


def _dkim_with(zones: dict[str, str], tag: str) -> None:
    line = next(line for line in zones[AIO].splitlines() if line.startswith(f"{SELECTOR}. "))
    assert '"v=DKIM1; k=rsa; p=' in line
    zones[AIO] = add(drop(zones[AIO], SELECTOR, "TXT"), line.replace('"v=DKIM1; k=rsa; ', f'"v=DKIM1; k=rsa; {tag} " "', 1))


SERVED = {
    "mx.unexpected-preferred": lambda zones: zones.__setitem__(AIO, add(zones[AIO], f"{AIO}. 3600 IN MX 5 mx.attacker.example.")),
    "dkim.not-for-email": lambda zones: _dkim_with(zones, "s=tlsrpt;"),
    "dkim.no-sha256": lambda zones: _dkim_with(zones, "h=sha1;"),
    "mta-sts.multiple": lambda zones: zones.__setitem__(AIO, add(zones[AIO], f'_mta-sts.{AIO}. 3600 IN TXT "v=STSv1; id=1"')),
}


@pytest.mark.parametrize("finding_id", sorted(SERVED))
def test_served_record_receivers_misuse_fails_the_check(finding_id: str, examples, tmp_path: Path) -> None:
    example: Example = examples("all-in-one")
    zones = dict(example.zones)
    SERVED[finding_id](zones)
    report = check(example, zones, tmp_path)
    errors = {f.id: f for f in report.findings if f.severity is Severity.ERROR}
    assert list(errors) == [finding_id], [(f.id, f.seen) for f in errors.values()]
    assert errors[finding_id].domain == AIO and errors[finding_id].advice
    assert report.exit_status() == 1
    if finding_id.startswith("dkim."):
        assert not any(f.id == "dkim.match" and f.subject == SELECTOR for f in report.findings)
