"""`provision check --tls` against a real Postfix and Dovecot running the configuration rendered for
examples/all-in-one (host mail, mail.smallco.example) on 127.0.0.171; a second Postfix on
127.0.0.172 with AUTH enabled where it must not be; and a small POP3S stand-in (certificates the
real servers would not take: expired, wrong name, TLS 1.1).

The real servers need root (ports 25/465/587/993/995, the postfix and dovecot users) and the
Debian packages tests/run.sh installs. Nothing is created outside one temp directory under /tmp
(0755: Postfix and Dovecot processes running as their own users must reach it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.check import Report, Severity
from provisioner.check.findings import Finding
from provisioner.check.tls import (
    CATEGORY,
    SELF_SIGNED_SEEN,
    Context,
    Endpoint,
    Mode,
    Probe,
    Session,
    check_tls,
    endpoints,
    judge_probe,
    name_matches,
    with_findings,
)
from provisioner.keys.tls import self_signed
from provisioner.site.model import Site
from provisioner.site.types import OsRelease, TlsSource
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH, EXAMPLES
from tests.render.releases import render_for

ADDRESS = "127.0.0.171"  # the rendered Postfix + Dovecot
BROKEN_ADDRESS = "127.0.0.172"  # a second Postfix offering AUTH where it must not; no Dovecot
STANDIN_ADDRESS = "127.0.0.173"  # the POP3S stand-in; nothing else listens there
FQDN = "mail.smallco.example"
HOST = "mail"


def ids(findings: list[Finding], severity: Severity | None = None, port: int | None = None) -> set[str]:
    return {f.id for f in findings if (severity is None or f.severity is severity) and (port is None or f.subject.endswith(f":{port}"))}


def at(findings: list[Finding], id_: str, port: int) -> Finding:
    matches = [f for f in findings if f.id == id_ and f.subject == f"{FQDN}:{port}"]
    assert len(matches) == 1, (id_, port, findings)
    return matches[0]


def mail_side(findings: list[Finding]) -> list[Finding]:
    """The findings of the mail ports: no nginx runs here, so the web side (HTTPS 443 and the
    MTA-STS policy, tests/check/test_tls_web.py) is left out."""
    return [f for f in findings if f.category is CATEGORY and not f.subject.endswith(":443")]


# ---------------------------------------------------------------------------- real servers


def _require_servers() -> None:
    if os.geteuid() != 0:
        pytest.fail("the TLS check tests run real Postfix and Dovecot on ports 25-995: run them as root (tests/run.sh, CI)")
    for tool in ("postfix", "postconf", "postmap", "postalias", "dovecot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run tests/run.sh, which installs postfix, postfix-lmdb and dovecot-*")


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stdout}{done.stderr}"
    return done.stdout


def _wait_listening(address: str, ports: list[int], log: Path, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        try:
            socket.create_connection((address, waiting[0]), timeout=1).close()
            waiting.pop(0)
        except OSError:
            time.sleep(0.1)
    if waiting:
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        pytest.fail(f"nothing listens on {address} ports {waiting}; log {log}:\n{text[-3000:]}")


@dataclass
class PostfixInstance:
    conf: Path
    queue: Path
    log: Path

    @property
    def auth_socket(self) -> Path:
        return self.queue / "private" / "auth"


def start_postfix(
    build: Path, root: Path, address: str, main: dict[str, str] | None = None, master: list[str] | None = None, sasl_path: str | None = None
) -> PostfixInstance:
    """A second Postfix instance from the rendered /etc/postfix: only what must differ is changed."""
    etc = build / HOST / "etc"
    conf, queue, data, log = root / "postfix", root / "queue", root / "data", root / "postfix.log"
    shutil.copytree(etc / "postfix", conf)
    for path in (queue, data):
        path.mkdir()
    shutil.chown(data, "postfix")  # postfix-script: data_directory is the mail_owner's
    manifest = json.loads((build / "manifest.json").read_text())
    tables = [Path(t).name for t in manifest["hosts"][HOST]["postfix_tables"]]
    assert "aliases" in tables and "vmailbox" in tables, tables
    # Every rendered /etc path, now in the copy (tables) or the build tree (the certificate).
    moved = {"/etc/postfix/": f"{conf}/", "/etc/ssl/": f"{etc}/ssl/"}
    overrides: dict[str, str] = {}
    for line in _run("postconf", "-c", conf, "-n").splitlines():
        key, _, value = line.partition(" = ")
        new = value
        for old, there in moved.items():
            new = new.replace(old, there)
        if new != value:
            overrides[key] = new
    assert any(k == "smtpd_tls_chain_files" for k in overrides), overrides
    overrides.update(
        {
            "queue_directory": str(queue),
            "data_directory": str(data),
            # The binding is in master.cf (below): inet_interfaces may only name this machine's
            # interface addresses, and 127.0.0.171 is loopback without being one.
            "inet_interfaces": "loopback-only",
            "maillog_file_prefixes": str(root),
            "maillog_file": str(log),
            "smtpd_milters": "",  # no OpenDKIM running
            "non_smtpd_milters": "",
            "multi_instance_enable": "no",
        }
    )
    if sasl_path is not None:
        overrides["smtpd_sasl_path"] = sasl_path
    overrides.update(main or {})
    _run("postconf", "-c", conf, "-e", *(f"{k}={v}" for k, v in overrides.items()))
    if master:
        _run("postconf", "-c", conf, "-P", *master)
    # Bind the inet services to the test address (master(5): "host:port" service names).
    # ... and without the port-25 filter (rspamd, milter_default_action=tempfail): none runs here.
    lines = []
    for line in (conf / "master.cf").read_text().splitlines():
        if re.match(r"\s+-o (smtpd_milters|milter_default_action)=", line):
            continue
        fields = line.split()
        if len(fields) > 1 and fields[1] == "inet" and ":" not in fields[0] and not line[0].isspace():
            line = f"{address}:{line}"
        lines.append(line)
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    for table in tables:
        _run("postalias" if table == "aliases" else "postmap", "-c", conf, f"lmdb:{conf / table}")
    _run("postfix", "-c", conf, "check")
    return PostfixInstance(conf, queue, log)


def run_postfix(instance: PostfixInstance, address: str) -> None:
    _run("postfix", "-c", instance.conf, "start")
    _wait_listening(address, [25, 587, 465], instance.log)


def stop_postfix(instance: PostfixInstance) -> None:
    subprocess.run(["postfix", "-c", str(instance.conf), "stop"], capture_output=True, timeout=60)
    pid_file = instance.queue / "pid" / "master.pid"
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return
        time.sleep(0.1)
    if pid_file.exists():  # still there: end this instance's master (and so its children)
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ValueError, IndexError, ProcessLookupError):
            pass


def start_dovecot(build: Path, root: Path, address: str, postfix_queue: Path) -> subprocess.Popen[bytes]:
    """The rendered dovecot.conf with its paths moved into `root`, listening on `address` only."""
    etc = build / HOST / "etc"
    base = root / "dovecot"
    for sub in ("run", "state", "vmail"):
        (base / sub).mkdir(parents=True)
    users = base / "users"
    shutil.copy(etc / "dovecot" / "users", users)
    shutil.chown(users, group="dovecot")  # as the manifest says: root:dovecot 0640
    text = (etc / "dovecot" / "dovecot.conf").read_text()
    replaced = {
        "/var/spool/postfix/": f"{postfix_queue}/",  # auth and LMTP sockets in the test Postfix's spool
        "/var/log/dovecot.log": str(root / "dovecot.log"),
        "/etc/ssl/": f"{etc}/ssl/",
        "/etc/dovecot/users": str(users),
        "/var/vmail": str(base / "vmail"),
        "user = vmail\n": "user = dovecot\n",  # auth-userdb for dovecot-lda: no vmail user on this machine
    }
    for old, new in replaced.items():
        assert old in text, old
        text = text.replace(old, new)
    lines = [f"listen = {address}" if line.startswith("listen = ") else line for line in text.splitlines()]
    lines += [f"base_dir = {base / 'run'}", f"state_dir = {base / 'state'}", f"instance_name = provision-tls-{address}"]
    conf = base / "dovecot.conf"
    conf.write_text("\n".join(lines) + "\n")
    _run("doveconf", "-c", conf, "-n")
    with (root / "dovecot.err").open("wb") as err:
        proc = subprocess.Popen(["dovecot", "-c", str(conf), "-F"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait_listening(address, [993, 995], root / "dovecot.log")
        assert (postfix_queue / "private" / "auth").is_socket()
    except BaseException:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Stack:
    site: Site
    build: Path
    root: Path
    postfix: PostfixInstance


def _tempdir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="provision-tls-", dir="/tmp"))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    _require_servers()
    root = _tempdir()
    postfix: PostfixInstance | None = None
    dovecot: subprocess.Popen[bytes] | None = None
    try:
        trees, build = render_for("all-in-one", OsRelease.DEBIAN_12, root)  # served by this machine's Postfix 3.7 and Dovecot 2.3
        assert HOST in trees
        site = load_site(EXAMPLES / "all-in-one" / "site.yaml").site
        (root / "good").mkdir()
        postfix = start_postfix(build, root / "good", ADDRESS)
        dovecot = start_dovecot(build, root / "good", ADDRESS, postfix.queue)
        run_postfix(postfix, ADDRESS)
        yield Stack(site, build, root, postfix)
    finally:
        if postfix is not None:
            stop_postfix(postfix)
        if dovecot is not None:
            stop_process(dovecot)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.judge
def test_rendered_all_in_one_passes_tls(stack: Stack) -> None:
    findings = mail_side(check_tls(stack.site, lambda host: ADDRESS, timeout=5.0))
    assert all(f.domain == FQDN and f.category is CATEGORY for f in findings)
    # every endpoint of the host's services was reached, with TLS 1.2 or newer
    for port in (25, 587, 465, 993, 995):
        protocol = at(findings, "tls.protocol", port)
        assert protocol.severity is Severity.PASS and protocol.seen.split()[0] in ("TLSv1.2", "TLSv1.3"), protocol
        name = at(findings, "tls.name-match", port)
        assert name.severity is Severity.PASS and FQDN in name.seen.split(", ")
        assert at(findings, "tls.expiry", port).severity is Severity.PASS
        self_signed_finding = at(findings, "tls.self-signed", port)
        assert self_signed_finding.severity is Severity.WARNING, self_signed_finding  # not an error: MTA-STS is testing
        assert self_signed_finding.seen.startswith(SELF_SIGNED_SEEN)
    assert at(findings, "tls.no-auth-before-starttls", 587).severity is Severity.PASS
    assert at(findings, "tls.no-auth-on-25", 25).severity is Severity.PASS
    assert at(findings, "tls.submission-auth", 587).severity is Severity.PASS  # Dovecot's auth socket answers
    assert at(findings, "tls.submission-auth", 465).severity is Severity.PASS
    assert at(findings, "tls.cleartext-closed", 143).severity is Severity.PASS
    assert at(findings, "tls.cleartext-closed", 110).severity is Severity.PASS
    # Postfix and Dovecot read the same rendered certificate: one certificate on every port
    assert [f.severity for f in findings if f.id == "tls.same-certificate"] == [Severity.PASS]
    # nothing else is wrong: the self-signed warnings are the only findings that do not pass
    assert {f.id for f in findings if not f.passed} == {"tls.self-signed"}
    assert not ids(findings, Severity.ERROR)
    report = with_findings(Report((), ("smallco.example",), (FQDN,)), findings)
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1
    assert report.counts[Severity.WARNING] == 5


@pytest.mark.judge
def test_auth_before_starttls_and_on_port_25_are_errors(stack: Stack) -> None:
    """A Postfix copy with `smtpd_tls_auth_only = no` on submission (and TLS only offered there:
    with `smtpd_tls_security_level = encrypt` Postfix never offers AUTH before STARTTLS), SASL on
    port 25; no Dovecot on that address, so 993/995 are not reachable."""
    root = stack.root / "broken"
    root.mkdir()
    broken = start_postfix(
        stack.build,
        root,
        BROKEN_ADDRESS,
        main={"smtpd_sasl_auth_enable": "yes"},  # AUTH on 25 (after STARTTLS: smtpd_tls_auth_only stays yes there)
        master=["submission/inet/smtpd_tls_auth_only=no", "submission/inet/smtpd_tls_security_level=may"],
        sasl_path=str(stack.postfix.auth_socket),  # the running Dovecot's socket, so AUTH is offered
    )
    try:
        run_postfix(broken, BROKEN_ADDRESS)
        findings = mail_side(check_tls(stack.site, lambda host: BROKEN_ADDRESS, timeout=5.0))
    finally:
        stop_postfix(broken)
    before = at(findings, "tls.auth-before-starttls", 587)
    assert before.severity is Severity.ERROR and before.seen == "AUTH offered before STARTTLS"
    assert "smtpd_tls_auth_only=yes" in before.advice
    on_25 = at(findings, "tls.auth-on-25", 25)
    assert on_25.severity is Severity.ERROR and on_25.seen == "AUTH offered after STARTTLS"
    for port in (993, 995):
        unreachable = at(findings, "tls.unreachable", port)
        assert unreachable.severity is Severity.ERROR and unreachable.seen == "not reachable: connection refused"
    assert ids(findings, Severity.ERROR) == {"tls.auth-before-starttls", "tls.auth-on-25", "tls.unreachable"}
    assert with_findings(Report((), (), (FQDN,)), findings).exit_status() == 1


# ---------------------------------------------------------------------------- a POP3S stand-in


POP_SITE = f"""\
version: 1
name: t
hosts:
  mail:
    fqdn: {FQDN}
    ipv4: [192.0.2.10]
    services: [pop3]
  mx:
    fqdn: mx.smallco.example
    ipv4: [192.0.2.20]
    services: [mx]
    mx_priority: 10
TLS_SECTION
domains:
  smallco.example:
    mailboxes:
      alice: {{password: "{ALICE_HASH}"}}
    aliases: {{postmaster: alice}}
"""


def pop_site(tls: str = "") -> str:
    return POP_SITE.replace("TLS_SECTION\n", tls)


FILES_TLS = "tls:\n  source: files\n  files: {cert: /etc/ssl/mail.crt, key: /etc/ssl/mail.key}\n"


class Pop3sStandIn:
    """Implicit-TLS POP3 that greets and says goodbye; records the SNI names clients send."""

    def __init__(self, workdir: Path, cert_pem: bytes, key_pem: bytes, maximum: ssl.TLSVersion | None = None) -> None:
        (workdir / "cert.pem").write_bytes(cert_pem)
        (workdir / "key.pem").write_bytes(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(workdir / "cert.pem", workdir / "key.pem")
        if maximum is not None:
            self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TLS < 1.2 is the point here
                self.ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                self.ctx.maximum_version = maximum
        self.sni: list[str | None] = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.server = socket.create_server((STANDIN_ADDRESS, 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"+OK stand-in ready\r\n")
                    if tls.recv(100).upper().startswith(b"QUIT"):
                        tls.sendall(b"+OK bye\r\n")
            except (OSError, ssl.SSLError):
                conn.close()  # the verifying client gives up on an untrusted certificate

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.server.close()


def _standin_check(
    write_site, tmp_path: Path, cert_pem: bytes, key_pem: bytes, tls: str = "", maximum: ssl.TLSVersion | None = None
) -> tuple[list[Finding], Pop3sStandIn]:
    site = load_site(write_site(pop_site(tls))).site
    server = Pop3sStandIn(tmp_path, cert_pem, key_pem, maximum)
    try:
        findings = check_tls(site, lambda host: STANDIN_ADDRESS, timeout=3.0, ports={995: server.port})
    finally:
        server.close()
    return findings, server


def test_standin_sni_ports_and_unreachable(write_site, tmp_path: Path) -> None:
    cert, key = self_signed(FQDN, dt.datetime.now(dt.UTC))
    findings, server = _standin_check(write_site, tmp_path, cert, key)
    assert server.sni and set(server.sni) == {FQDN}  # the FQDN, although we connect to an address
    assert at(findings, "tls.protocol", 995).severity is Severity.PASS
    assert at(findings, "tls.name-match", 995).severity is Severity.PASS
    assert at(findings, "tls.self-signed", 995).severity is Severity.WARNING
    # 25 (a mailbox host receives from the MX) is not served on the stand-in address
    assert at(findings, "tls.unreachable", 25).severity is Severity.ERROR
    assert at(findings, "tls.cleartext-closed", 110).severity is Severity.PASS


def test_standin_expired_wrong_name_untrusted_with_files_source(write_site, tmp_path: Path) -> None:
    cert, key = self_signed("other.example", dt.datetime.now(dt.UTC) - dt.timedelta(days=900))
    findings, _ = _standin_check(write_site, tmp_path, cert, key, tls=FILES_TLS)
    assert at(findings, "tls.expired", 995).severity is Severity.ERROR
    mismatch = at(findings, "tls.name-mismatch", 995)
    assert mismatch.severity is Severity.ERROR and "other.example" in mismatch.seen  # files: an error
    untrusted = at(findings, "tls.untrusted", 995)
    assert untrusted.severity is Severity.ERROR and untrusted.seen.startswith("not trusted: ")


def test_standin_old_protocol_is_an_error_on_a_mandatory_port(write_site, tmp_path: Path) -> None:
    cert, key = self_signed(FQDN, dt.datetime.now(dt.UTC))
    try:
        findings, _ = _standin_check(write_site, tmp_path, cert, key, maximum=ssl.TLSVersion.TLSv1_1)
    except ssl.SSLError as exc:  # pragma: no cover - an OpenSSL built without TLS 1.1
        pytest.skip(f"this OpenSSL cannot serve TLS 1.1: {exc}")
    old = [f for f in findings if f.subject.endswith(":995") and f.id in ("tls.protocol-old", "tls.handshake-failed")]
    if old and old[0].id == "tls.handshake-failed":
        pytest.skip(f"this OpenSSL refuses TLS 1.1 on one side: {old[0].seen}")
    assert at(findings, "tls.protocol-old", 995).severity is Severity.ERROR
    assert at(findings, "tls.protocol-old", 995).seen.startswith("TLSv1.1")


# ---------------------------------------------------------------------------- judging alone


def test_endpoints_follow_services(write_site) -> None:
    site = load_site(write_site(pop_site())).site
    assert [(e.port, e.mode) for e in endpoints(site.hosts["mail"])] == [(25, Mode.SMTP_STARTTLS), (995, Mode.POP3S), (143, Mode.IMAP), (110, Mode.POP3)]


@pytest.mark.parametrize(
    ("pattern", "name", "match"),
    [
        ("mail.smallco.example", "MAIL.smallco.example", True),
        ("*.smallco.example", "mail.smallco.example", True),
        ("*.smallco.example", "a.mail.smallco.example", False),
        ("*.example", "smallco.example", False),
        ("m*.smallco.example", "mail.smallco.example", False),
        ("smallco.example", "mail.smallco.example", False),
    ],
)
def test_name_matches(pattern: str, name: str, match: bool) -> None:
    assert name_matches(pattern, name) is match


def _judge(port: int, version: str, days_left: float, source: TlsSource = TlsSource.SELF_SIGNED, enforce: bool = False, write_site=None) -> list[Finding]:
    site = load_site(write_site(pop_site().replace("services: [pop3]", "services: [mx, submission, pop3]\n    mx_priority: 10"))).site
    host = site.hosts["mail"]
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cert, _ = self_signed(FQDN, now - dt.timedelta(days=825) + dt.timedelta(days=days_left))
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(cert).public_bytes(Encoding.DER)
    ep = next(e for e in endpoints(host) if e.port == port)
    session = Session(greeting="x", starttls_offered=True, auth_before_tls=False, auth_after_tls=port != 25, version=version, cipher="C", cert=der)
    return judge_probe(Probe(host, ep, "192.0.2.10", port, session, trusted=False, verify_error="self-signed certificate"), Context(source, enforce, now))


def test_judge_protocol_and_expiry_severities(write_site) -> None:
    on_25 = _judge(25, "TLSv1", 10, write_site=write_site)
    assert at(on_25, "tls.protocol-old", 25).severity is Severity.WARNING  # opportunistic: old beats cleartext
    assert at(on_25, "tls.expiring", 25).severity is Severity.WARNING
    on_587 = _judge(587, "TLSv1.1", 100, write_site=write_site)
    assert at(on_587, "tls.protocol-old", 587).severity is Severity.ERROR
    assert at(on_587, "tls.expiry", 587).severity is Severity.PASS
    assert at(_judge(587, "TLSv1.3", -1, write_site=write_site), "tls.expired", 587).severity is Severity.ERROR


def test_self_signed_is_an_error_on_an_mx_under_mta_sts_enforce(write_site) -> None:
    assert at(_judge(25, "TLSv1.3", 100, enforce=True, write_site=write_site), "tls.self-signed", 25).severity is Severity.ERROR
    assert at(_judge(587, "TLSv1.3", 100, enforce=True, write_site=write_site), "tls.self-signed", 587).severity is Severity.WARNING
    untrusted = at(_judge(587, "TLSv1.3", 100, source=TlsSource.FILES, write_site=write_site), "tls.untrusted", 587)
    assert untrusted.severity is Severity.ERROR


def test_no_starttls_and_endpoint_without_tls(write_site) -> None:
    site = load_site(write_site(pop_site())).site
    host = site.hosts["mail"]
    session = Session(greeting="mx ESMTP", starttls_offered=False, auth_before_tls=False)
    ep = Endpoint(25, Mode.SMTP_STARTTLS, "smtp")
    found = judge_probe(Probe(host, ep, "192.0.2.10", 25, session), Context(TlsSource.SELF_SIGNED, False))
    assert ids(found) == {"tls.no-starttls", "tls.no-auth-on-25"}
    assert at(found, "tls.no-starttls", 25).severity is Severity.ERROR
