"""`check --tls` with certificates from a CA: the chain against `--ca`, names, expiry, one certificate
per host (the "renewed but not reloaded" case) and the MTA-STS policy fetched over HTTPS.

Real TLS servers on loopback (tests/check/tls_standin.py: SMTP STARTTLS 25/587, SMTPS 465, IMAPS
993, POP3S 995, HTTPS 443 serving a policy, each with a certificate from a test CA made here), the
real client code of check/tls.py and check/mtasts.py; DNS answers (the `_mta-sts` TXT record) come
from a StaticResolver. Every server is closed at teardown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.check import Report, Severity
from provisioner.check.command import check_command
from provisioner.check.findings import Finding
from provisioner.check.mtasts import BODY_LIMIT, parse_policy, txt_id
from provisioner.check.report import report_json, report_plain
from provisioner.check.tls import HTTPS, check_tls, web_host, with_findings
from provisioner.dns.records import mta_sts_id, mta_sts_policy
from provisioner.errors import ProvisionError
from provisioner.mailauth.resolver import StaticResolver
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.check.tls_standin import ADDRESS, Leaf, StandIn, TestCa, http_answer
from tests.conftest import ALICE_HASH

FQDN = "mail.smallco.example"
DOMAIN = "smallco.example"
STS = f"mta-sts.{DOMAIN}"
AUTOCONFIG = f"autoconfig.{DOMAIN}"
ALL_NAMES = (FQDN, STS, AUTOCONFIG)

SITE = f"""\
version: 1
name: t
hosts:
  mail:
    fqdn: {FQDN}
    ipv4: [192.0.2.10]
    services: [mx, submission, imap, pop3]
    mx_priority: 10
tls:
  source: acme  # the web side (MTA-STS policy, autoconfig) is served by the mailbox host only then
  acme: {{email: hostmaster@{DOMAIN}}}
domains:
  {DOMAIN}:
    mailboxes:
      alice: {{password: "{ALICE_HASH}"}}
    aliases: {{postmaster: alice}}
"""

MAIL_PORTS = (25, 587, 465, 993, 995)
KINDS = {25: ("smtp", False), 587: ("smtp", True), 465: ("smtps", True), 993: ("imaps", False), 995: ("pop3s", False)}


def policy_of(site: Site) -> bytes:
    return mta_sts_policy(site, site.mta_sts_policy(DOMAIN)).encode()


def dns_for(site: Site, policy: bytes | None = None) -> StaticResolver:
    """The _mta-sts TXT record as `provision dns` publishes it (for `policy`, default: the site's)."""
    text = (policy or policy_of(site)).decode()
    return StaticResolver({(f"_mta-sts.{DOMAIN}", "TXT"): [f"v=STSv1; id={mta_sts_id(text)}"]})


@dataclass
class World:
    site: Site
    ca: TestCa
    servers: list[StandIn]

    def serve(self, leaves: dict[int, Leaf], answer: bytes | None = None, kinds: dict[int, str] | None = None, trickle: float = 0.0) -> dict[int, int]:
        """One stand-in per port in `leaves` (443: HTTPS answering `answer`); the ports map."""
        ports: dict[int, int] = {}
        for port, leaf in leaves.items():
            kind, auth = KINDS.get(port, ("https", False))
            kind = (kinds or {}).get(port, kind)
            server = StandIn(kind, leaf, FQDN, auth=auth, answer=answer if answer is not None else http_answer(policy_of(self.site)), trickle=trickle)
            self.servers.append(server)
            ports[port] = server.port
        return ports

    def check(
        self, ports: dict[int, int], *, resolver: StaticResolver | None = None, on_disk: dict[str, bytes] | None = None, timeout: float = 3.0
    ) -> list[Finding]:
        return check_tls(self.site, lambda host: ADDRESS, timeout, ports, ca=str(self.ca.path), on_disk=on_disk, resolver=resolver or dns_for(self.site))


@pytest.fixture
def world(write_site, tmp_path: Path) -> Iterator[World]:
    site = load_site(write_site(SITE)).site
    w = World(site, TestCa(tmp_path), [])
    try:
        yield w
    finally:
        for server in w.servers:
            server.close()


def everywhere(leaf: Leaf) -> dict[int, Leaf]:
    return {**dict.fromkeys(MAIL_PORTS, leaf), 443: leaf}


def problems(findings: list[Finding]) -> list[tuple[str, str, Severity]]:
    return sorted((f.id, f.subject, f.severity) for f in findings if not f.passed)


def one(findings: list[Finding], id_: str, subject: str) -> Finding:
    matches = [f for f in findings if f.id == id_ and f.subject == subject]
    assert len(matches) == 1, (id_, subject, problems(findings))
    return matches[0]


def test_all_good_passes(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    servers_ports = world.serve(everywhere(leaf))
    findings = world.check(servers_ports)
    assert problems(findings) == []
    for port in (*MAIL_PORTS, 443):
        assert one(findings, "tls.trusted", f"{FQDN}:{port}").severity is Severity.PASS
        assert one(findings, "tls.name-match", f"{FQDN}:{port}").severity is Severity.PASS
    for name in (STS, AUTOCONFIG):  # the web host's other names, asked by SNI
        assert one(findings, "tls.name-match", f"{name}:443").seen == ", ".join(ALL_NAMES)
    same = one(findings, "tls.same-certificate", FQDN)
    assert same.seen.startswith("smtp 25, https 443, submissions 465, submission 587, imaps 993, pop3s 995: serial ")
    url = f"https://{STS}/.well-known/mta-sts.txt"
    for id_ in ("mta-sts.policy-fetched", "mta-sts.policy-syntax", "mta-sts.policy-id", "mta-sts.policy-mode", "mta-sts.policy-mx"):
        assert one(findings, id_, url).domain == DOMAIN
    https = next(s for s in world.servers if s.kind == "https")
    assert set(https.sni) == {FQDN, STS, AUTOCONFIG}  # the policy was asked as mta-sts.<domain>
    report = with_findings(Report((), (DOMAIN,), (FQDN,)), findings)
    assert report.exit_status(strict=True) == 0


def test_one_service_with_an_older_certificate_is_named_stale(world: World) -> None:
    """Renewed, and every service reloaded but Dovecot's IMAP: 993 still serves the old one."""
    old, new = world.ca.issue(*ALL_NAMES, age_days=60, days_left=30), world.ca.issue(*ALL_NAMES, age_days=1, days_left=89)
    findings = world.check(world.serve({**everywhere(new), 993: old}))
    assert problems(findings) == [("tls.stale-certificate", f"{FQDN}:993", Severity.ERROR)]
    stale = one(findings, "tls.stale-certificate", f"{FQDN}:993")
    assert stale.seen.startswith("imaps serves an older certificate: serial ")
    assert f"notBefore {(old_nb := _not_before(old))}" in stale.seen and f"notBefore {_not_before(new)}" in stale.expected
    assert old_nb < _not_before(new)
    assert stale.advice.startswith("reload dovecot")
    assert not [f for f in findings if f.id == "tls.same-certificate"]


def test_certificate_on_disk_newer_than_every_service_is_renewed_but_not_reloaded(world: World) -> None:
    served, on_disk = world.ca.issue(*ALL_NAMES, age_days=60, days_left=30), world.ca.issue(*ALL_NAMES)
    findings = world.check(world.serve(everywhere(served)), on_disk={FQDN: on_disk.der})
    stale = sorted(f.subject for f in findings if f.id == "tls.stale-certificate")
    assert stale == sorted(f"{FQDN}:{p}" for p in (*MAIL_PORTS, 443))
    assert {f.advice.split(" (")[0] for f in findings if f.id == "tls.stale-certificate"} == {"reload postfix", "reload dovecot", "reload nginx"}
    assert all("on disk (--host-cert)" in f.expected for f in findings if f.id == "tls.stale-certificate")
    # the same files, the certificate on disk being the one served: passes
    again = check_tls(world.site, lambda host: ADDRESS, 3.0, _ports(world), ca=str(world.ca.path), on_disk={FQDN: served.der}, resolver=dns_for(world.site))
    assert "on disk" in one(again, "tls.same-certificate", FQDN).expected


def test_a_renewal_that_reuses_the_key_is_still_told_apart_by_serial(world: World) -> None:
    key = _key()
    old, new = world.ca.issue(*ALL_NAMES, age_days=30, key=key), world.ca.issue(*ALL_NAMES, key=key)
    findings = world.check(world.serve({**everywhere(new), 25: old}))
    assert problems(findings) == [("tls.stale-certificate", f"{FQDN}:25", Severity.ERROR)]
    assert one(findings, "tls.stale-certificate", f"{FQDN}:25").advice.startswith("reload postfix")


def test_wrong_name_is_an_error(world: World) -> None:
    wrong, web_only_fqdn = world.ca.issue("other.smallco.example"), world.ca.issue(FQDN)
    findings = world.check(world.serve({**dict.fromkeys(MAIL_PORTS, wrong), 443: web_only_fqdn}))
    for port in MAIL_PORTS:
        mismatch = one(findings, "tls.name-mismatch", f"{FQDN}:{port}")
        assert mismatch.severity is Severity.ERROR and "other.smallco.example" in mismatch.seen
    for name in (STS, AUTOCONFIG):  # the HTTPS certificate lacks the web names
        assert one(findings, "tls.name-mismatch", f"{name}:443").expected == f"a certificate for {name}"
    unavailable = one(findings, "mta-sts.policy-unavailable", f"https://{STS}/.well-known/mta-sts.txt")
    assert unavailable.seen.startswith(f"certificate not valid for {STS}: ") and unavailable.severity is Severity.ERROR
    # the services disagree too (two certificates): whichever is older is named
    assert [f.id for f in findings if f.id.startswith("tls.stale")]


def test_expires_in_ten_days_is_a_warning(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES, age_days=80, days_left=10)
    findings = world.check(world.serve(everywhere(leaf)))
    assert {(f.id, f.severity) for f in findings if not f.passed} == {("tls.expiring", Severity.WARNING)}
    assert len([f for f in findings if f.id == "tls.expiring"]) == 8  # 5 mail ports, 443 for three names
    report = with_findings(Report((), (DOMAIN,), (FQDN,)), findings)
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1


def test_policy_id_mismatch_and_missing_mx_are_errors(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    stale_policy = b"version: STSv1\r\nmode: enforce\r\nmx: mx.other.example\r\nmax_age: 86400\r\n"
    findings = world.check(world.serve(everywhere(leaf), answer=http_answer(stale_policy)))
    url = f"https://{STS}/.well-known/mta-sts.txt"
    mismatch = one(findings, "mta-sts.policy-id-mismatch", url)
    assert mismatch.expected == f"id={mta_sts_id(policy_of(world.site).decode())} (the _mta-sts.{DOMAIN} TXT record)"
    assert mismatch.seen.startswith(f"the policy served has id={mta_sts_id(stale_policy.decode())}")
    missing = one(findings, "mta-sts.policy-mx-missing", url)
    assert missing.seen == f"not covered: {FQDN} (patterns: mx.other.example)"
    assert one(findings, "mta-sts.policy-mode-mismatch", url).seen == "mode: enforce"
    assert one(findings, "mta-sts.policy-syntax", url).severity is Severity.PASS  # valid, only not ours
    # a wildcard covering the MX passes the mx check; the id follows the TXT record as published
    wildcard = b"version: STSv1\nmode: testing\nmx: *.smallco.example\nmax_age: 604800\n"
    again = check_tls(
        world.site,
        lambda host: ADDRESS,
        3.0,
        world.serve({443: leaf}, answer=http_answer(wildcard)),
        ca=str(world.ca.path),
        resolver=dns_for(world.site, wildcard),
    )
    assert {f.id for f in again if f.subject == url} == {
        "mta-sts.policy-fetched",
        "mta-sts.policy-syntax",
        "mta-sts.policy-id",
        "mta-sts.policy-mode",
        "mta-sts.policy-mx",
    }


def test_junk_server_gives_clear_findings_and_no_traceback(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    ports = world.serve({**everywhere(leaf), 993: leaf, 443: leaf}, kinds={993: "junk", 443: "junk"})
    findings = world.check(ports)
    assert not [f for f in findings if f.id == "check.internal-error"]
    imaps = [f for f in findings if f.subject == f"{FQDN}:993"]
    assert [(f.id, f.severity) for f in imaps] == [("tls.handshake-failed", Severity.ERROR)], imaps
    policy = one(findings, "mta-sts.policy-unavailable", f"https://{STS}/.well-known/mta-sts.txt")
    assert policy.seen.startswith("TLS handshake failed")
    plain = report_plain(with_findings(Report((), (DOMAIN,), (FQDN,)), findings))
    assert "\x1b" not in plain and "\x00" not in plain


@pytest.mark.parametrize(
    ("answer", "seen"),
    [
        (http_answer(b"x" * (BODY_LIMIT + 10)), "the policy is larger than 64 KiB"),
        (http_answer(b"x" * (BODY_LIMIT * 4)), "the answer is larger than 64 KiB"),  # read no further
        (
            http_answer(b"", status="301 Moved Permanently").replace(b"\r\n\r\n", b"\r\nLocation: https://evil.example/\r\n\r\n"),
            "HTTP 301 Moved Permanently (a redirect",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nversion: STSv1\r\n", "connection closed early: 16 of 500 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/pl", "connection closed inside the HTTP headers"),
        (b"", "connection closed before an HTTP answer"),
        (b"\x1b]8;;evil\x07 hello\r\n\r\n", "not an HTTP answer: '\\x1b]8;;evil\\x07 hello'"),
    ],
)
def test_hostile_policy_servers_are_findings(world: World, answer: bytes, seen: str) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    findings = world.check(world.serve({443: leaf}, answer=answer))
    policy = one(findings, "mta-sts.policy-unavailable", f"https://{STS}/.well-known/mta-sts.txt")
    assert policy.seen.startswith(seen), policy.seen


def test_policy_with_controls_is_invalid_and_printed_escaped(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    evil = b"version: STSv1\r\nmode: testing\x1b[2J\r\nmx: mail.smallco.example\r\nmax_age: 604800\r\n"
    findings = world.check(world.serve({443: leaf}, answer=http_answer(evil, content_type="text/html")))
    url = f"https://{STS}/.well-known/mta-sts.txt"
    invalid = one(findings, "mta-sts.policy-invalid", url)
    assert invalid.seen.startswith("line 2: a control character in 'mode: testing\\x1b[2J'")
    assert one(findings, "mta-sts.policy-content-type", url).severity is Severity.WARNING
    report = with_findings(Report((), (DOMAIN,), (FQDN,)), findings)
    assert "\x1b" not in report_plain(report)
    assert any("\x1b" not in f["seen"] for d in report_json(report)["domains"] for f in d["findings"])  # JSON: exact text, valid JSON
    json.dumps(report_json(report))


def test_a_server_that_trickles_is_cut_off_in_bounded_time(world: World) -> None:
    leaf = world.ca.issue(*ALL_NAMES)
    ports = world.serve({443: leaf}, answer=http_answer(policy_of(world.site)), trickle=0.2)
    started = time.monotonic()
    findings = world.check(ports, timeout=1.0)
    assert time.monotonic() - started < 3  # the policy fetch's deadline is the timeout, 1 s
    assert one(findings, "mta-sts.policy-unavailable", f"https://{STS}/.well-known/mta-sts.txt").seen == "no complete answer in time"


def test_no_policy_fetch_when_mta_sts_mode_is_none(write_site, tmp_path: Path) -> None:
    site = load_site(write_site(SITE + "policy:\n  mta_sts: {mode: none}\n")).site
    ca = TestCa(tmp_path)
    server = StandIn("https", ca.issue(*ALL_NAMES), FQDN, answer=http_answer(b"unused"))
    try:
        findings = check_tls(site, lambda host: ADDRESS, 3.0, {443: server.port}, ca=str(ca.path))
    finally:
        server.close()
    assert not [f for f in findings if f.id.startswith("mta-sts.")]
    assert server.sni.count(STS) == 0  # mode none: the name is neither published nor served, nor fetched
    assert server.sni.count(AUTOCONFIG) == 1


FILES_SITE = SITE.replace(
    f"  source: acme  # the web side (MTA-STS policy, autoconfig) is served by the mailbox host only then\n  acme: {{email: hostmaster@{DOMAIN}}}\n",
    "  source: files\n  files: {cert: /etc/ssl/mail.crt, key: /etc/ssl/mail.key}\n",
)


def test_without_acme_nothing_of_ours_is_expected_on_443_and_the_policy_is_fetched_where_dns_says(write_site, tmp_path: Path) -> None:
    """tls.source files (or self-signed): no web side of ours (the sheet asks the user to serve the
    policy). check does not knock on the mailbox host's 443; it fetches the policy from the address
    DNS gives mta-sts.<domain>, as a sender would, and says so when there is none."""
    site = load_site(write_site(FILES_SITE)).site
    assert web_host(site) is None
    ca = TestCa(tmp_path)
    leaf = ca.issue(*ALL_NAMES)
    servers = [StandIn(kind, leaf, FQDN, auth=auth) for kind, auth in KINDS.values()]
    policy_server = StandIn("https", leaf, FQDN, answer=http_answer(policy_of(site)))
    ports = {port: server.port for port, server in zip(KINDS, servers, strict=True)} | {443: policy_server.port}
    served = StaticResolver({**dns_for(site).table, (STS, "A"): [ADDRESS]})
    try:
        findings = check_tls(site, lambda host: ADDRESS, 3.0, ports, ca=str(ca.path), resolver=served)
        nowhere = check_tls(site, lambda host: ADDRESS, 3.0, ports, ca=str(ca.path), resolver=dns_for(site))
    finally:
        for server in [*servers, policy_server]:
            server.close()
    assert problems(findings) == [], problems(findings)
    assert one(findings, "mta-sts.policy-id", f"https://{STS}/.well-known/mta-sts.txt").passed
    assert not [f for f in findings if f.subject.endswith(":443") and f.subject.startswith(FQDN)]  # our host's 443 not judged
    assert policy_server.sni == [STS]
    (missing,) = [f for f in nowhere if f.id == "mta-sts.policy-unavailable"]
    assert "mta-sts.smallco.example has no address in DNS" in missing.seen


def test_web_host_is_the_web_service_host_else_the_mailbox_host(write_site) -> None:
    site = load_site(write_site(SITE)).site
    web = web_host(site)
    assert web is not None and web.fqdn == FQDN
    assert HTTPS.port == 443


# ---------------------------------------------------------------------------- parsing alone


def test_rendered_policies_parse_clean(write_site) -> None:
    site = load_site(write_site(SITE)).site
    policy = parse_policy(policy_of(site))
    assert policy.errors == () and policy.mx == (FQDN,) and policy.mode == "testing"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"version: STSv2\nmode: testing\nmx: a.example\nmax_age: 1\n", "version is 'STSv2', not 'STSv1'"),
        (b"version: STSv1\nmode: on\nmx: a.example\nmax_age: 1\n", "mode 'on' is not enforce, testing or none"),
        (b"version: STSv1\nmode: testing\nmax_age: 1\n", "no mx field (required unless mode is none)"),
        (b"version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n", "max_age '99999999999' is not a number"),
        (b"version: STSv1\nmode: testing\nmx: *.*.example\nmax_age: 1\n", "line 3: mx '*.*.example' is not a host name"),
        (b"version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n\xff", "not ASCII text (byte 54)"),
        (b"<html>hello</html>", "line 1: not 'key: value'"),
    ],
)
def test_invalid_policies_say_why(body: bytes, error: str) -> None:
    assert any(e.startswith(error) for e in parse_policy(body).errors), parse_policy(body).errors


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parse_policy_never_raises(body: bytes) -> None:
    policy = parse_policy(body)
    assert policy.errors or policy.version == "STSv1"


def test_txt_id_takes_the_one_sts_record() -> None:
    assert txt_id(["v=STSv1; id=abc"]) == "abc"
    assert txt_id(["v=STSv1;id=abc ", "google-site-verification=x"]) == "abc"
    assert txt_id(["v=STSv1; id=a", "v=STSv1; id=b"]) is None  # RFC 8461 §3.1: several records: none
    assert txt_id(["v=STSv1"]) is None


# ---------------------------------------------------------------------------- the command's options


def test_bad_ca_and_host_cert_are_clear_errors(write_site, tmp_path: Path) -> None:
    site_path = write_site(SITE)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x1b[2J not a certificate")
    run: Callable[..., Report] = lambda **kw: check_command(site_path, tmp_path / "state", None, ["127.0.0.1:9"], tls=True, **kw)  # noqa: E731
    with pytest.raises(ProvisionError, match="--ca .*junk.pem: no PEM certificate"):
        run(ca=junk)
    with pytest.raises(ProvisionError, match="--host-cert .*junk.pem: not a PEM or DER certificate"):
        run(host_cert=[f"mail={junk}"])
    with pytest.raises(ProvisionError, match="--host-cert 'nope': no such host in the site"):
        run(host_cert=[f"nope={junk}"])
    with pytest.raises(ProvisionError, match="expected HOST=FILE"):
        run(host_cert=["mail"])
    with pytest.raises(ProvisionError, match="--ca .*missing.pem: No such file"):
        run(ca=tmp_path / "missing.pem")
    with pytest.raises(ProvisionError, match="are for --tls"):
        check_command(site_path, tmp_path / "state", None, ["127.0.0.1:9"], ca=junk)


# ---------------------------------------------------------------------------- helpers


def _not_before(leaf: Leaf) -> str:
    from cryptography import x509

    return f"{x509.load_der_x509_certificate(leaf.der).not_valid_before_utc:%Y-%m-%d %H:%M}"


def _key():  # noqa: ANN202
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _ports(world: World) -> dict[int, int]:
    by_kind = {443: next(s.port for s in world.servers if s.kind == "https")}
    ports = [s.port for s in world.servers if s.kind != "https"]
    return {**dict(zip(MAIL_PORTS, ports, strict=True)), **by_kind}
