"""`provision check --tls`: connect to each host's mail ports as a client would, judge what TLS shows.

Per host, the ports its services open (the same rules as render/postfix.py and dovecot.conf.j2):

* 25 with STARTTLS: mx, backup-mx, relay, and the mailbox host (LMTP-less relays deliver to it);
* 587 with STARTTLS and 465 with implicit TLS: submission;
* 993 implicit TLS: imap; 995 implicit TLS: pop3; cleartext 143 / 110 must not answer on a mailbox host;
* 443 HTTPS on the web host (`web_host`): its FQDN, and mta-sts.<domain> / autoconfig.<domain> by SNI.

Beyond one endpoint: every TLS service of a host must serve the same certificate, the newest one
(`check/samecert.py`: the "renewed but not reloaded" case), and the MTA-STS policy is fetched over
HTTPS and compared with the TXT record and the MX names (`check/mtasts.py`).

Only the standard library speaks the protocols (smtplib, imaplib, poplib, ssl); the certificate is
read with `cryptography`. Like the DNS checks: connect (`_probe`: what was seen), then judge
(`judge_probe`: pure, findings). Nothing here raises for what a server does; a bug in one endpoint's
check becomes a `check.internal-error` finding.

Trust: each TLS endpoint is first asked with a context that verifies against the system trust store
(or the `ca` file given: tests, a private CA)
(host names are judged separately, from the certificate, so the site's severity applies); only when
that verification fails is it asked a second time without verification, to read the certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import imaplib
import poplib
import smtplib
import socket
import ssl
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from provisioner.check.findings import Category, Finding, Report, Severity, sort_findings
from provisioner.mailauth.resolver import Resolver
from provisioner.site.model import Host, Site
from provisioner.site.types import MtaStsMode, Service, TlsSource

CATEGORY = Category.TLS  # every finding of --tls

EXPIRY_WARNING_DAYS = 20  # ACME clients renew 30 days before expiry: under 20 renewal is failing
MODERN = ("TLSv1.2", "TLSv1.3")
# postscreen (port 25 on mx hosts) holds the final "220 " line for postscreen_greet_wait (6 s by
# default) for clients it does not know yet; smtplib waits for that line, so port 25 gets longer.
SMTP_GREETING_WAIT = 10.0
CLIENT_NAME = "provision-check.invalid"  # our EHLO name: a checker, never a mail server
SELF_SIGNED_SEEN = "self-signed: senders and MTA-STS enforce will not trust it"


class Mode(StrEnum):
    SMTP_STARTTLS = "SMTP STARTTLS"
    SMTPS = "SMTP implicit TLS"
    IMAPS = "IMAP implicit TLS"
    POP3S = "POP3 implicit TLS"
    IMAP = "IMAP cleartext"
    POP3 = "POP3 cleartext"
    HTTPS = "HTTPS"


@dataclass(frozen=True)
class Endpoint:
    port: int  # the standard port; `ports` in check_tls may connect elsewhere
    mode: Mode
    service: str  # smtp, submission, submissions, imaps, pop3s, imap, pop3

    @property
    def mandatory(self) -> bool:
        """TLS is required here (RFC 8314 for 465/993/995; our submission demands STARTTLS)."""
        return self.port != 25

    @property
    def cleartext(self) -> bool:
        return self.mode in (Mode.IMAP, Mode.POP3)


SMTP = Endpoint(25, Mode.SMTP_STARTTLS, "smtp")
SUBMISSION = Endpoint(587, Mode.SMTP_STARTTLS, "submission")
SUBMISSIONS = Endpoint(465, Mode.SMTPS, "submissions")
IMAPS = Endpoint(993, Mode.IMAPS, "imaps")
POP3S = Endpoint(995, Mode.POP3S, "pop3s")
IMAP = Endpoint(143, Mode.IMAP, "imap")
POP3 = Endpoint(110, Mode.POP3, "pop3")
HTTPS = Endpoint(443, Mode.HTTPS, "https")  # the web side: MTA-STS policy, autoconfig, ACME
WEB_SERVICE = "web"  # a host's service naming the web side's host (issue 14), when the model has it


def web_host(site: Site) -> Host | None:
    """The host serving the web side (the one with service `web`, else the mailbox host), when the
    site serves it (Site.serves_web: with tls.source acme, whose certificates cover its names).
    Otherwise nothing of ours listens on 443: the sheet asks the user to serve the policy."""
    hosts = site.web_hosts if site.serves_web else []
    return hosts[0][1] if hosts else None


def web_names(site: Site) -> list[str]:
    """The names the web host serves besides its FQDN, as DNS publishes them (dns/records.py)."""
    from provisioner.dns.records import web_names as published

    return [name for _, names in published(site) for name in names]


def endpoints(host: Host) -> list[Endpoint]:
    """The ports a client can expect on `host`, from its services."""
    out: list[Endpoint] = []
    if host.receives_internet_mail or host.stores_mailboxes or host.has(Service.RELAY):
        out.append(SMTP)
    if host.has(Service.SUBMISSION):
        out += [SUBMISSION, SUBMISSIONS]
    if host.has(Service.IMAP):
        out.append(IMAPS)
    if host.has(Service.POP3):
        out.append(POP3S)
    if host.stores_mailboxes:
        out += [IMAP, POP3]  # must not answer: passwords would cross in clear (RFC 8314 §3)
    return out


def default_address(host: Host) -> str | None:
    """The first IPv4 address, else the first IPv6 one."""
    addresses = [str(a) for a in host.ipv4] or [str(a) for a in host.ipv6]
    return addresses[0] if addresses else None


# ---------------------------------------------------------------------------- connecting


class _SniContext(ssl.SSLContext):
    """smtplib/imaplib/poplib pass the address they connect to as server_hostname, and Python sends
    no SNI for an address; this context sends the host's FQDN instead, as a mail client would."""

    sni: str = ""

    def wrap_socket(
        self,
        sock: Any,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: Any = None,
        session: Any = None,
    ) -> Any:
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, self.sni or server_hostname, session)


def client_context(sni: str, verify: bool, ca: str | None = None) -> ssl.SSLContext:
    """A client context that can see what a server negotiates, TLS 1.0 included (to report it);
    verifying against `ca` (a PEM file) instead of the system trust store when given."""
    ctx = _SniContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.sni = sni
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is deprecated: that is what we look for
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.check_hostname = False  # names are judged from the certificate, with the site's severity
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca is not None:
            ctx.load_verify_locations(cafile=ca)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Session:
    """What one connection saw."""

    greeting: str = ""
    starttls_offered: bool | None = None  # SMTP STARTTLS endpoints only
    auth_before_tls: bool | None = None  # SMTP: AUTH in the EHLO answer before STARTTLS
    auth_after_tls: bool | None = None  # SMTP: AUTH in the EHLO answer inside TLS
    version: str | None = None  # negotiated TLS version; None: no TLS
    cipher: str = ""
    cert: bytes | None = None  # DER


@dataclass(frozen=True)
class Probe:
    """What connecting to one endpoint found (input of judge_probe)."""

    host: Host
    endpoint: Endpoint
    address: str
    port: int  # the port actually connected to
    session: Session | None = None
    trusted: bool | None = None  # None: no certificate was seen
    verify_error: str = ""
    failure: str = ""  # "", "unreachable", "handshake" or "protocol"
    detail: str = ""
    name: str = ""  # the name sent as SNI and expected in the certificate; "": the host's FQDN

    @property
    def expected_name(self) -> str:
        return self.name or self.host.fqdn


def _tls_state(session: Session, sock: Any) -> None:
    if isinstance(sock, ssl.SSLSocket):
        session.version = sock.version()
        cipher = sock.cipher()
        session.cipher = cipher[0] if cipher else ""
        session.cert = sock.getpeercert(binary_form=True)


def _text(reply: bytes | str) -> str:
    value = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(value.split())[:200]


def _smtp(ep: Endpoint, address: str, port: int, ctx: ssl.SSLContext, timeout: float) -> Session:
    session = Session()
    wait = max(timeout, SMTP_GREETING_WAIT) if ep.port == 25 else timeout
    client: smtplib.SMTP
    if ep.mode is Mode.SMTPS:
        client = smtplib.SMTP_SSL(address, port, local_hostname=CLIENT_NAME, timeout=wait, context=ctx)
    else:
        client = smtplib.SMTP(address, port, local_hostname=CLIENT_NAME, timeout=wait)
    try:
        code, reply = client.ehlo()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        session.greeting = _text(reply.splitlines()[0] if reply else b"")
        if ep.mode is Mode.SMTPS:
            _tls_state(session, client.sock)
            session.auth_after_tls = client.has_extn("auth")
            return session
        session.starttls_offered = client.has_extn("starttls")
        session.auth_before_tls = client.has_extn("auth")
        if not session.starttls_offered:
            return session
        client.starttls(context=ctx)
        _tls_state(session, client.sock)
        client.ehlo()
        session.auth_after_tls = client.has_extn("auth")
        return session
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def _imap_pop(ep: Endpoint, address: str, port: int, ctx: ssl.SSLContext, timeout: float) -> Session:
    session = Session()
    if ep.mode in (Mode.IMAPS, Mode.IMAP):
        imap = imaplib.IMAP4_SSL(address, port, ssl_context=ctx, timeout=timeout) if ep.mode is Mode.IMAPS else imaplib.IMAP4(address, port, timeout=timeout)
        try:
            session.greeting = _text(imap.welcome)
            _tls_state(session, imap.sock)
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()
        return session
    pop = poplib.POP3_SSL(address, port, context=ctx, timeout=timeout) if ep.mode is Mode.POP3S else poplib.POP3(address, port, timeout=timeout)
    try:
        session.greeting = _text(pop.welcome)
        _tls_state(session, pop.sock)
    finally:
        with contextlib.suppress(poplib.error_proto, OSError):
            pop.quit()
        pop.close()
    return session


def _handshake(address: str, port: int, ctx: ssl.SSLContext, timeout: float) -> Session:
    """HTTPS: the TLS handshake only (the policy fetch is mtasts.py's)."""
    session = Session()
    with socket.create_connection((address, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as sock:
        _tls_state(session, sock)
    return session


def _session(ep: Endpoint, address: str, port: int, ctx: ssl.SSLContext, timeout: float) -> Session:
    if ep.mode is Mode.HTTPS:
        return _handshake(address, port, ctx, timeout)
    if ep.mode in (Mode.SMTP_STARTTLS, Mode.SMTPS):
        return _smtp(ep, address, port, ctx, timeout)
    return _imap_pop(ep, address, port, ctx, timeout)


def _failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLError):
        return "handshake", f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return "protocol", f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected | EOFError):
        return "protocol", f"connection closed by the server: {exc}" if str(exc) else "connection closed by the server"
    if isinstance(exc, ConnectionRefusedError):
        return "unreachable", "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "unreachable", "no answer (timed out)"
    if isinstance(exc, OSError):
        return "unreachable", exc.strerror or str(exc)
    return "protocol", f"{type(exc).__name__}: {_text(str(exc))}"


_EXPECTED_ERRORS = (OSError, EOFError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto)


def probe(host: Host, ep: Endpoint, address: str, port: int, verifying: ssl.SSLContext, plain: ssl.SSLContext, timeout: float, name: str = "") -> Probe:
    """Connect to one endpoint: verified first; unverified again only if verification failed.
    `name`: the SNI the contexts send, when it is not the host's FQDN (the web host's other names)."""
    if ep.cleartext:
        try:
            return Probe(host, ep, address, port, _session(ep, address, port, plain, timeout), name=name)
        except _EXPECTED_ERRORS as exc:
            failure, detail = _failure(exc)
            return Probe(host, ep, address, port, failure=failure, detail=detail, name=name)
    try:
        session = _session(ep, address, port, verifying, timeout)
        return Probe(host, ep, address, port, session, trusted=True if session.cert is not None else None, name=name)
    except ssl.SSLCertVerificationError as exc:
        verify_error = _text(exc.verify_message or str(exc))
    except _EXPECTED_ERRORS as exc:
        failure, detail = _failure(exc)
        return Probe(host, ep, address, port, failure=failure, detail=detail, name=name)
    try:
        session = _session(ep, address, port, plain, timeout)
    except _EXPECTED_ERRORS as exc:
        failure, detail = _failure(exc)
        return Probe(host, ep, address, port, trusted=False, verify_error=verify_error, failure=failure, detail=detail, name=name)
    return Probe(host, ep, address, port, session, trusted=False, verify_error=verify_error, name=name)


# ---------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]  # SAN DNS names, or the CN when there is no SAN
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int = 0
    spki: str = ""  # SHA-256 of the SubjectPublicKeyInfo, hex: stable across a renewal that reuses the key

    @property
    def identity(self) -> tuple[int, str]:
        """What tells two certificates apart: serial and key (RFC 5280 §4.1.2.2: serials are per CA)."""
        return (self.serial, self.spki)

    def short(self) -> str:
        """The serial (hex, shortened) and notBefore, as a finding shows one certificate."""
        serial = f"{self.serial:x}"
        return f"serial {serial[:16]}{'…' if len(serial) > 16 else ''}, notBefore {self.not_before:%Y-%m-%d %H:%M} UTC"


def cert_info(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    try:
        names = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not names:
        names = tuple(cns)  # RFC 6125 §6.4.4: the CN only when there are no DNS names
    spki = hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    return CertInfo(names, cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number, spki)


def name_matches(pattern: str, fqdn: str) -> bool:
    """RFC 6125 §6.4.3: exact (case-insensitive), or a wildcard as the whole left-most label."""
    pattern, fqdn = pattern.lower().rstrip("."), fqdn.lower().rstrip(".")
    if pattern == fqdn:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        head, _, rest = fqdn.partition(".")
        return bool(head) and rest == pattern[2:] and rest.count(".") >= 1
    return False


@dataclass(frozen=True)
class Context:
    """What the judge needs from the site."""

    source: TlsSource
    mta_sts_enforce: bool  # some domain publishes MTA-STS mode enforce
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def site_context(site: Site, now: dt.datetime | None = None) -> Context:
    enforce = any(site.mta_sts_policy(d).mode is MtaStsMode.ENFORCE for d in site.domains)
    return Context(site.tls.source, enforce, now or dt.datetime.now(dt.UTC))


def _subject(p: Probe) -> str:
    return f"{p.expected_name}:{p.endpoint.port}"


def _where(p: Probe) -> str:
    return f"{p.address}:{p.port}" if ":" not in p.address else f"[{p.address}]:{p.port}"


_LISTENER_ADVICE = {
    "smtp": "Postfix master.cf 'smtp inet' on port 25, and the firewall open for it",
    "submission": "Postfix master.cf 'submission inet' (587), and the firewall open for it",
    "submissions": "Postfix master.cf 'submissions inet' with smtpd_tls_wrappermode=yes (465), and the firewall open for it",
    "imaps": "Dovecot: protocols imap, inet_listener imaps port 993; firewall open",
    "pop3s": "Dovecot: protocols pop3, inet_listener pop3s port 995; firewall open",
    "https": "the web server (nginx) listening on 443 for the web side (MTA-STS policy, autoconfig); firewall open",
}


@dataclass(frozen=True)
class About:
    """Makes the findings of one endpoint: of host `fqdn`, subject `fqdn:port`, in the TLS category;
    a passing finding carries no advice."""

    fqdn: str
    subject: str

    def __call__(self, id_: str, severity: Severity, expected: str, seen: str, advice: str = "") -> Finding:
        return Finding(id_, self.fqdn, CATEGORY, severity, self.subject, expected, seen, "" if severity is Severity.PASS else advice)


def judge_probe(p: Probe, ctx: Context) -> list[Finding]:
    """What one endpoint's probe means, as findings (pure): one judge per aspect, in this order."""
    ep, say = p.endpoint, About(p.host.fqdn, _subject(p))
    if ep.cleartext:
        return [judge_cleartext(p, say)]
    if p.session is None:
        return [judge_unconnected(p, say)]
    s = p.session
    out = judge_auth(ep, s, say)
    if s.version is None:
        return out
    out.append(judge_protocol(ep, s, say))
    if s.cert is None:
        return out
    info = cert_info(s.cert)
    out.append(judge_names(info, ctx.source, say, p.expected_name))
    out.append(judge_validity(info, ctx.now, say))
    out.append(judge_trust(p.trusted, p.verify_error, ctx, ep.port == 25 and p.host.receives_internet_mail, say))
    return out


def judge_cleartext(p: Probe, say: About) -> Finding:
    """IMAP 143 / POP3 110 on a mailbox host: closed is right, anything answering is not."""
    ep = p.endpoint
    if p.session is None and p.failure == "unreachable":
        return say("tls.cleartext-closed", Severity.PASS, f"{ep.service} {ep.port} closed (implicit TLS only)", f"{p.detail} at {_where(p)}")
    seen = f"answers at {_where(p)}: {p.session.greeting}" if p.session else f"port open at {_where(p)}: {p.detail}"
    return say(
        "tls.cleartext-open",
        Severity.WARNING,
        f"{ep.service} {ep.port} closed (implicit TLS only)",
        seen,
        f"Dovecot: inet_listener {ep.service} {{ port = 0 }}; clients use {'993' if ep.service == 'imap' else '995'} (RFC 8314)",
    )


def judge_unconnected(p: Probe, say: About) -> Finding:
    """A TLS endpoint that gave no session: not reachable, the handshake failed, or the protocol did."""
    ep = p.endpoint
    if p.failure == "unreachable":
        return say("tls.unreachable", Severity.ERROR, f"{ep.mode} at {_where(p)}", f"not reachable: {p.detail}", _LISTENER_ADVICE[ep.service])
    if p.failure == "handshake":
        return say(
            "tls.handshake-failed",
            Severity.ERROR,
            f"a TLS handshake ({ep.mode})",
            p.detail,
            "check the certificate and key files and the TLS settings in the server log",
        )
    return say("tls.protocol-error", Severity.ERROR, f"a {ep.mode} session", p.detail, "see the server's log for why it refused the session")


def judge_auth(ep: Endpoint, s: Session, say: About) -> list[Finding]:
    """SMTP: STARTTLS offered, AUTH only inside TLS on submission, never on port 25."""
    out: list[Finding] = []
    smtp = ep.mode in (Mode.SMTP_STARTTLS, Mode.SMTPS)
    if ep.mode is Mode.SMTP_STARTTLS:
        if ep.port == 587:
            if s.auth_before_tls:
                out.append(
                    say(
                        "tls.auth-before-starttls",
                        Severity.ERROR,
                        "no AUTH before STARTTLS",
                        "AUTH offered before STARTTLS",
                        "master.cf submission: -o smtpd_tls_auth_only=yes (PF-05/06)",
                    )
                )
            else:
                out.append(say("tls.no-auth-before-starttls", Severity.PASS, "no AUTH before STARTTLS", "AUTH only after STARTTLS"))
        if not s.starttls_offered:
            level = "may" if ep.port == 25 else "encrypt"
            out.append(
                say(
                    "tls.no-starttls",
                    Severity.ERROR,
                    "STARTTLS offered",
                    f"no STARTTLS in the EHLO answer of {s.greeting or say.fqdn}",
                    f"smtpd_tls_security_level = {level} with smtpd_tls_chain_files",
                )
            )
    if smtp and ep.port == 25:
        if s.auth_before_tls or s.auth_after_tls:
            when = "before STARTTLS" if s.auth_before_tls else "after STARTTLS"
            out.append(
                say(
                    "tls.auth-on-25",
                    Severity.ERROR,
                    "no AUTH on port 25",
                    f"AUTH offered {when}",
                    "main.cf: smtpd_sasl_auth_enable = no; enable AUTH only on submission (587/465) (PF-05)",
                )
            )
        else:
            out.append(say("tls.no-auth-on-25", Severity.PASS, "no AUTH on port 25", "no AUTH offered"))
    if smtp and ep.port != 25 and s.version is not None:
        if s.auth_after_tls:
            out.append(say("tls.submission-auth", Severity.PASS, "AUTH offered inside TLS", "AUTH offered"))
        else:
            out.append(
                say(
                    "tls.submission-no-auth",
                    Severity.ERROR,
                    "AUTH offered inside TLS",
                    "no AUTH: users cannot log in to send",
                    "master.cf: -o smtpd_sasl_auth_enable=yes; Dovecot's auth socket at smtpd_sasl_path",
                )
            )
    return out


def judge_protocol(ep: Endpoint, s: Session, say: About) -> Finding:
    """The negotiated version: TLS 1.2 or newer (RFC 8996 deprecates 1.0 and 1.1); older is an
    error where TLS is mandatory, a warning on 25, where old TLS still beats cleartext."""
    if s.version in MODERN:
        return say("tls.protocol", Severity.PASS, "TLSv1.2 or newer", f"{s.version} ({s.cipher})")
    smtp = ep.mode in (Mode.SMTP_STARTTLS, Mode.SMTPS)
    advice = "Postfix: smtpd_tls_mandatory_protocols = >=TLSv1.2" if smtp else "Dovecot: ssl_min_protocol = TLSv1.2"
    return say("tls.protocol-old", Severity.ERROR if ep.mandatory else Severity.WARNING, "TLSv1.2 or newer", f"{s.version} ({s.cipher})", advice)


def judge_names(info: CertInfo, source: TlsSource, say: About, name: str = "") -> Finding:
    """The certificate names the host (RFC 6125), or `name` (the web host's mta-sts/autoconfig
    names); a mismatch is only a warning for self-signed."""
    want = name or say.fqdn
    shown = ", ".join(info.names) or info.subject or "(none)"
    if any(name_matches(n, want) for n in info.names):
        return say("tls.name-match", Severity.PASS, want, shown)
    strict = source is not TlsSource.SELF_SIGNED
    return say(
        "tls.name-mismatch",
        Severity.ERROR if strict else Severity.WARNING,
        f"a certificate for {want}",
        f"certificate names: {shown}",
        f"a certificate whose subjectAltName includes {want}" + ("" if strict else "; `provision render` makes the self-signed one for the host FQDN"),
    )


def judge_validity(info: CertInfo, now: dt.datetime, say: About) -> Finding:
    """Valid now, and for EXPIRY_WARNING_DAYS more."""
    left = info.not_after - now
    until = f"{info.not_after:%Y-%m-%d %H:%M} UTC"
    if info.not_before > now:
        return say(
            "tls.not-yet-valid",
            Severity.ERROR,
            "a certificate valid now",
            f"valid from {info.not_before:%Y-%m-%d %H:%M} UTC",
            "check the clock of the host and of the CA",
        )
    if left.total_seconds() <= 0:
        return say("tls.expired", Severity.ERROR, "a certificate valid now", f"expired {until}", "renew the certificate and reload Postfix/Dovecot")
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return say(
            "tls.expiring",
            Severity.WARNING,
            f"valid for {EXPIRY_WARNING_DAYS} days or more",
            f"expires {until} ({left.days} days)",
            "renew the certificate and reload Postfix/Dovecot",
        )
    return say("tls.expiry", Severity.PASS, f"valid for {EXPIRY_WARNING_DAYS} days or more", f"valid until {until} ({left.days} days)")


def judge_trust(trusted: bool | None, verify_error: str, ctx: Context, mx_inbound: bool, say: About) -> Finding:
    """The chain verifies against the system trust store. Self-signed is a warning, but an error on
    the MX's port 25 (`mx_inbound`) under MTA-STS enforce (RFC 8461 §4.2): senders that honour it
    do not deliver to this MX at all."""
    if trusted:
        return say("tls.trusted", Severity.PASS, "verifies against the system trust store", "verified")
    if ctx.source is TlsSource.SELF_SIGNED:
        refused = mx_inbound and ctx.mta_sts_enforce
        return say(
            "tls.self-signed",
            Severity.ERROR if refused else Severity.WARNING,
            "a certificate from a CA senders and clients trust",
            f"{SELF_SIGNED_SEEN} ({verify_error})" if verify_error else SELF_SIGNED_SEEN,
            "tls.source: files with a CA-issued certificate before MTA-STS mode enforce"
            + ("; MTA-STS mode is enforce: senders that honour it refuse this MX now" if refused else ""),
        )
    return say(
        "tls.untrusted",
        Severity.ERROR,
        "verifies against the system trust store",
        f"not trusted: {verify_error}",
        "install the full chain (certificate, then intermediates) at tls.files.cert",
    )


# ---------------------------------------------------------------------------- running


def check_tls(
    site: Site,
    address_for: Callable[[Host], str] | None = None,
    timeout: float = 5.0,
    ports: dict[int, int] | None = None,
    *,
    concurrency: int = 16,
    now: dt.datetime | None = None,
    ca: str | None = None,
    on_disk: Mapping[str, bytes] | None = None,
    resolver: Resolver | None = None,
) -> list[Finding]:
    """Connect to every endpoint of every host of `site` and judge TLS, names, expiry, trust, AUTH;
    then per host whether every service serves the same, newest certificate; then each domain's
    MTA-STS policy from the web host.

    `address_for(host)` is the address to connect to (default: the first IPv4, else IPv6);
    `ports` maps a standard port to the one to use (tests: {25: 2525, ...}); `timeout` is per
    socket operation (port 25 waits at least SMTP_GREETING_WAIT for a postscreen greeting).
    `ca`: a PEM file to verify against instead of the system trust store; `on_disk`: host FQDN ->
    the DER certificate newest on that host (`--host-cert`); `resolver` reads the `_mta-sts` TXT
    records (without one, the site's own policy id is expected).
    Never raises for what a server does. Findings are sorted like run_check's.
    """
    # Imported here: both build on this module's probes and judges.
    from provisioner.check.mtasts import policy_context, policy_url, sts_domains
    from provisioner.check.samecert import judge_same_certificate

    ports = ports or {}
    ctx = site_context(site, now)
    findings: list[Finding] = []
    jobs: list[tuple[Host, str, Callable[[], Probe]]] = []
    web = web_host(site)
    addresses: dict[str, str] = {}
    for host in sorted(site.hosts.values(), key=lambda h: h.fqdn):
        address = address_for(host) if address_for is not None else default_address(host)
        if not address:
            findings.append(
                Finding(
                    "tls.unreachable",
                    host.fqdn,
                    CATEGORY,
                    Severity.ERROR,
                    host.fqdn,
                    "an address to connect to",
                    "the host declares no address",
                    "add ipv4 or ipv6 to the host",
                )
            )
            continue
        addresses[host.fqdn] = address
        # Contexts are made here, in one thread: client_context silences a warning (not thread-safe).
        verifying, plain = client_context(host.fqdn, verify=True, ca=ca), client_context(host.fqdn, verify=False)
        host_endpoints = endpoints(host) + ([HTTPS] if host is web else [])
        for ep in host_endpoints:
            port = ports.get(ep.port, ep.port)
            jobs.append((host, f"{host.fqdn}:{ep.port}", _bind(host, ep, address, port, verifying, plain, timeout)))
        if host is web:
            port = ports.get(HTTPS.port, HTTPS.port)
            for name in web_names(site):
                named = (client_context(name, verify=True, ca=ca), client_context(name, verify=False))
                jobs.append((host, f"{name}:{HTTPS.port}", _bind(host, HTTPS, address, port, *named, timeout, name)))
    policy_jobs: list[tuple[str, Callable[[], list[Finding]]]] = []
    policy_ctx = policy_context(ca)
    for domain in sts_domains(site):
        if web is not None and web.fqdn in addresses:
            policy_jobs.append((domain, _bind_policy(site, domain, addresses[web.fqdn], ports.get(HTTPS.port, HTTPS.port), policy_ctx, timeout, resolver)))
        elif web is None and resolver is not None:  # served elsewhere (the sheet's instruction): where DNS says
            policy_jobs.append((domain, _bind_policy_elsewhere(site, domain, ports.get(HTTPS.port, HTTPS.port), policy_ctx, timeout, resolver)))

    probes: dict[str, list[Probe]] = {}
    if jobs or policy_jobs:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs) + len(policy_jobs)))) as pool:
            futures = [(host.fqdn, subject, pool.submit(job)) for host, subject, job in jobs]
            policy_futures = [(domain, pool.submit(job)) for domain, job in policy_jobs]
            for fqdn, subject, future in futures:
                try:
                    done = future.result()
                    findings += judge_probe(done, ctx)
                    probes.setdefault(fqdn, []).append(done)
                except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                    findings.append(_internal(fqdn, subject, exc))
            for domain, policy_future in policy_futures:
                try:
                    findings += policy_future.result()
                except Exception as exc:  # noqa: BLE001
                    findings.append(_internal(domain, policy_url(domain), exc))
    for host in site.hosts.values():
        try:
            disk = (on_disk or {}).get(host.fqdn)
            findings += judge_same_certificate(host, probes.get(host.fqdn, []), cert_info(disk) if disk is not None else None)
        except Exception as exc:  # noqa: BLE001
            findings.append(_internal(host.fqdn, host.fqdn, exc))
    return list(sort_findings(findings))


def _internal(domain: str, subject: str, exc: Exception) -> Finding:
    return Finding(
        "check.internal-error",
        domain,
        Category.CHECK,
        Severity.ERROR,
        subject,
        "a completed check",
        _text(f"{type(exc).__name__}: {exc}"),
        "report this as a bug",
    )


def _bind(
    host: Host, ep: Endpoint, address: str, port: int, verifying: ssl.SSLContext, plain: ssl.SSLContext, timeout: float, name: str = ""
) -> Callable[[], Probe]:
    return lambda: probe(host, ep, address, port, verifying, plain, timeout, name)


def _bind_policy(
    site: Site, domain: str, address: str, port: int, ctx: ssl.SSLContext, timeout: float, resolver: Resolver | None
) -> Callable[[], list[Finding]]:
    from provisioner.check.mtasts import check_policy

    return lambda: check_policy(site, domain, address, port, ctx, timeout, resolver)


def _bind_policy_elsewhere(site: Site, domain: str, port: int, ctx: ssl.SSLContext, timeout: float, resolver: Resolver) -> Callable[[], list[Finding]]:
    from provisioner.check.mtasts import check_policy_elsewhere

    return lambda: check_policy_elsewhere(site, domain, port, ctx, timeout, resolver)


def with_findings(report: Report, findings: list[Finding]) -> Report:
    """`report` with `findings` added (sorted, counts recomputed): how the CLI merges --tls."""
    return Report(
        sort_findings([*report.findings, *findings]),
        report.domains,
        report.hosts,
        report.resolver,
        report.dnsbl_resolver,
    )
