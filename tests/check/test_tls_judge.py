"""check/tls.py's judges, one aspect at a time, without a socket: certificates are built in memory
with `cryptography` (names, validity dates), sessions are what a probe would have recorded
(protocol, STARTTLS and AUTH), trust is the verifier's verdict. tests/check/test_tls.py runs the
same judges against real Postfix and Dovecot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from provisioner.check.findings import Severity
from provisioner.check.tls import (
    CATEGORY,
    EXPIRY_WARNING_DAYS,
    IMAP,
    IMAPS,
    POP3,
    SMTP,
    SUBMISSION,
    SUBMISSIONS,
    About,
    CertInfo,
    Context,
    Endpoint,
    Probe,
    Session,
    cert_info,
    judge_auth,
    judge_cleartext,
    judge_names,
    judge_protocol,
    judge_trust,
    judge_unconnected,
    judge_validity,
)
from provisioner.site.types import TlsSource

FQDN = "mail.smallco.example"
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP256R1())  # one key: the judges read names and dates only


def say(port: int = 25) -> About:
    return About(FQDN, f"{FQDN}:{port}")


def certificate(
    sans: Sequence[str] | None = (FQDN,), cn: str | None = None, not_before: dt.datetime = NOW - dt.timedelta(days=1), days: float = 90
) -> CertInfo:
    """A certificate as a server would send it (DER), read back by cert_info."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return cert_info(builder.sign(KEY, hashes.SHA256()).public_bytes(Encoding.DER))


def test_a_finding_names_host_subject_category_and_has_no_advice_when_it_passes() -> None:
    passed = say(993)("x.ok", Severity.PASS, "e", "s", "do this")
    failed = say(993)("x.bad", Severity.ERROR, "e", "s", "do this")
    assert (passed.domain, passed.subject, passed.category, passed.advice) == (FQDN, f"{FQDN}:993", CATEGORY, "")
    assert failed.advice == "do this"


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("sans", [[FQDN], ["other.example", FQDN.upper()], ["*.smallco.example"]])
def test_a_certificate_naming_the_host_passes(sans: list[str]) -> None:
    found = judge_names(certificate(sans), TlsSource.FILES, say())
    assert (found.id, found.severity) == ("tls.name-match", Severity.PASS)


@pytest.mark.parametrize(
    ("source", "severity"), [(TlsSource.FILES, Severity.ERROR), (TlsSource.ACME, Severity.ERROR), (TlsSource.SELF_SIGNED, Severity.WARNING)]
)
def test_a_certificate_for_another_name_is_an_error_unless_self_signed(source: TlsSource, severity: Severity) -> None:
    found = judge_names(certificate(["www.smallco.example", "*.mail.smallco.example"]), source, say())
    assert (found.id, found.severity) == ("tls.name-mismatch", severity)
    assert "www.smallco.example" in found.seen and FQDN in found.advice


def test_the_common_name_counts_only_without_dns_names() -> None:
    # RFC 6125 §6.4.4: a CN is a fallback; with a subjectAltName present it is not a name
    assert judge_names(certificate(None, cn=FQDN), TlsSource.FILES, say()).id == "tls.name-match"
    assert judge_names(certificate(["other.example"], cn=FQDN), TlsSource.FILES, say()).id == "tls.name-mismatch"
    nameless = judge_names(certificate(None), TlsSource.FILES, say())
    assert nameless.id == "tls.name-mismatch" and "O=Test" in nameless.seen


@given(st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_a_wildcard_covers_one_label_only(label: str) -> None:
    wildcard = certificate(["*.smallco.example"])
    assert judge_names(wildcard, TlsSource.FILES, About(f"{label}.smallco.example", "s")).severity is Severity.PASS
    assert judge_names(wildcard, TlsSource.FILES, About(f"{label}.mail.smallco.example", "s")).severity is Severity.ERROR
    assert judge_names(wildcard, TlsSource.FILES, About("smallco.example", "s")).severity is Severity.ERROR


# ---------------------------------------------------------------------------- validity dates


@pytest.mark.parametrize(
    ("not_before", "days", "want", "severity"),
    [
        (NOW + dt.timedelta(hours=1), 90, "tls.not-yet-valid", Severity.ERROR),
        (NOW - dt.timedelta(days=90), 90, "tls.expired", Severity.ERROR),  # not_after == now: over
        (NOW - dt.timedelta(days=100), 90, "tls.expired", Severity.ERROR),
        (NOW - dt.timedelta(days=80), 90, "tls.expiring", Severity.WARNING),
        (NOW - dt.timedelta(days=90 - EXPIRY_WARNING_DAYS, seconds=1), 90, "tls.expiring", Severity.WARNING),
        (NOW - dt.timedelta(days=90 - EXPIRY_WARNING_DAYS), 90, "tls.expiry", Severity.PASS),
        (NOW, 90, "tls.expiry", Severity.PASS),
    ],
)
def test_validity_dates(not_before: dt.datetime, days: float, want: str, severity: Severity) -> None:
    found = judge_validity(certificate(not_before=not_before, days=days), NOW, say())
    assert (found.id, found.severity) == (want, severity)


@given(st.integers(min_value=-199, max_value=400))
def test_every_day_left_has_one_verdict_and_shows_the_date(days_left: int) -> None:
    info = certificate(not_before=NOW - dt.timedelta(days=200), days=200 + days_left)
    found = judge_validity(info, NOW, say())
    want = "tls.expired" if days_left <= 0 else "tls.expiring" if days_left < EXPIRY_WARNING_DAYS else "tls.expiry"
    assert found.id == want
    assert f"{info.not_after:%Y-%m-%d}" in found.seen


# ---------------------------------------------------------------------------- trust


def test_trust() -> None:
    self_signed, files = Context(TlsSource.SELF_SIGNED, False, NOW), Context(TlsSource.FILES, False, NOW)
    enforce = Context(TlsSource.SELF_SIGNED, True, NOW)
    assert judge_trust(True, "", files, True, say()).severity is Severity.PASS
    assert judge_trust(True, "", enforce, True, say()).severity is Severity.PASS
    warned = judge_trust(False, "self-signed certificate", self_signed, True, say())
    assert (warned.id, warned.severity) == ("tls.self-signed", Severity.WARNING) and "(self-signed certificate)" in warned.seen
    # MTA-STS enforce (RFC 8461 §4.2): refused where senders deliver, a warning on submission
    refused = judge_trust(False, "", enforce, True, say())
    assert (refused.id, refused.severity) == ("tls.self-signed", Severity.ERROR) and "refuse this MX" in refused.advice
    assert judge_trust(False, "", enforce, False, say(587)).severity is Severity.WARNING
    untrusted = judge_trust(False, "unable to get local issuer certificate", files, False, say(587))
    assert (untrusted.id, untrusted.severity) == ("tls.untrusted", Severity.ERROR) and "local issuer" in untrusted.seen
    assert judge_trust(None, "", files, False, say()).id == "tls.untrusted"


# ---------------------------------------------------------------------------- protocol version


@pytest.mark.parametrize(
    ("ep", "version", "severity", "advice"),
    [
        (SMTP, "TLSv1.3", Severity.PASS, ""),
        (IMAPS, "TLSv1.2", Severity.PASS, ""),
        (SMTP, "TLSv1", Severity.WARNING, "smtpd_tls_mandatory_protocols"),  # 25: old TLS beats cleartext
        (SUBMISSION, "TLSv1.1", Severity.ERROR, "smtpd_tls_mandatory_protocols"),
        (SUBMISSIONS, "TLSv1", Severity.ERROR, "smtpd_tls_mandatory_protocols"),
        (IMAPS, "TLSv1.1", Severity.ERROR, "ssl_min_protocol"),
    ],
)
def test_protocol_version(ep: Endpoint, version: str, severity: Severity, advice: str) -> None:
    found = judge_protocol(ep, Session(version=version, cipher="C"), say(ep.port))
    assert found.severity is severity and advice in found.advice and version in found.seen


# ---------------------------------------------------------------------------- STARTTLS and AUTH


def _auth(ep: Endpoint, **seen: object) -> dict[str, Severity]:
    session = Session(greeting="mx ESMTP", version="TLSv1.3", **{"starttls_offered": True, **seen})  # type: ignore[arg-type]
    return {f.id: f.severity for f in judge_auth(ep, session, say(ep.port))}


def test_port_25_offers_starttls_and_never_auth() -> None:
    assert _auth(SMTP, auth_before_tls=False, auth_after_tls=False) == {"tls.no-auth-on-25": Severity.PASS}
    assert _auth(SMTP, auth_before_tls=False, auth_after_tls=True) == {"tls.auth-on-25": Severity.ERROR}
    assert _auth(SMTP, auth_before_tls=True, auth_after_tls=True) == {"tls.auth-on-25": Severity.ERROR}
    assert _auth(SMTP, starttls_offered=False, auth_before_tls=False) == {"tls.no-starttls": Severity.ERROR, "tls.no-auth-on-25": Severity.PASS}


def test_submission_offers_auth_only_inside_tls() -> None:
    assert _auth(SUBMISSION, auth_before_tls=False, auth_after_tls=True) == {
        "tls.no-auth-before-starttls": Severity.PASS,
        "tls.submission-auth": Severity.PASS,
    }
    assert _auth(SUBMISSION, auth_before_tls=True, auth_after_tls=True)["tls.auth-before-starttls"] is Severity.ERROR
    assert _auth(SUBMISSION, auth_before_tls=False, auth_after_tls=False)["tls.submission-no-auth"] is Severity.ERROR
    assert _auth(SUBMISSIONS, auth_after_tls=True) == {"tls.submission-auth": Severity.PASS}
    assert _auth(SUBMISSIONS, auth_after_tls=False) == {"tls.submission-no-auth": Severity.ERROR}
    assert _auth(IMAPS) == {}  # AUTH and STARTTLS are SMTP's


# ---------------------------------------------------------------------------- no TLS session


def _probe(ep: Endpoint, session: Session | None = None, failure: str = "", detail: str = "") -> Probe:
    return Probe(None, ep, "192.0.2.10", ep.port, session, failure=failure, detail=detail)  # type: ignore[arg-type]  # the judges never read the host


def test_cleartext_ports_must_be_closed() -> None:
    closed = judge_cleartext(_probe(IMAP, failure="unreachable", detail="connection refused"), say(143))
    assert (closed.id, closed.severity) == ("tls.cleartext-closed", Severity.PASS)
    open_ = judge_cleartext(_probe(POP3, Session(greeting="+OK Dovecot ready.")), say(110))
    assert (open_.id, open_.severity) == ("tls.cleartext-open", Severity.WARNING) and "995" in open_.advice and "+OK Dovecot" in open_.seen


@pytest.mark.parametrize(("failure", "want"), [("unreachable", "tls.unreachable"), ("handshake", "tls.handshake-failed"), ("protocol", "tls.protocol-error")])
def test_an_endpoint_without_a_session_is_an_error(failure: str, want: str) -> None:
    found = judge_unconnected(_probe(SUBMISSIONS, failure=failure, detail="why"), say(465))
    assert (found.id, found.severity) == (want, Severity.ERROR) and found.advice
