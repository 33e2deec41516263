"""The smarthost's certificate is verified before the password is sent (issue 11 item 13).

A real Postfix (Debian's, a throwaway instance with its own queue) is configured with the
client settings and tables `render` makes for a relay host, and delivers one message to a TLS
SMTP server on loopback that records everything it is told. The smarthost's name resolves to
127.0.0.1 only inside a private mount namespace (a bind-mounted /etc/hosts): the machine's
own /etc/hosts is never touched. Parts not under test (queue, logging, a loopback smtpd to
hand the message in) are the harness's own settings.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.keys.store import ensure_keys
from provisioner.render import render_site
from provisioner.render.tree import HostTree
from provisioner.site.validate import load_site
from tests.conftest import FIXED_DAY, MINIMAL, ROOT

pytestmark = [
    pytest.mark.judge,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("postfix", "postmap", "unshare", "mount")),
        reason="needs root, Debian's postfix and util-linux (tests/run.sh installs them)",
    ),
]

NAME = "smtp.provider.example"
USER = "acme-relay"
PASSWORD = "p4ss-w0rd-for-the-provider"
NOW = dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Issued:
    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    dns: str | None = None,
    days: tuple[int, int] = (-1, 30),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    ca: bytes  # the private CA's certificate: what a user gives as relay.smarthost.tls_ca
    by_ca: Issued  # the provider's certificate for NAME, from the private CA
    wildcard: Issued  # from the private CA, for *.provider.example (covers NAME)
    wrong_name: Issued  # from the private CA, for another name
    expired: Issued  # from the private CA, for NAME, expired yesterday
    self_signed: Issued  # for NAME, signed by itself


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def make_pki() -> Pki:
    ca_key = _key()
    ca = _cert("Provider Test Root CA", ca_key, None, ca_key, ca=True, days=(-1, 365))
    pem = serialization.Encoding.PEM

    def issue(dns: str, days: tuple[int, int] = (-1, 30)) -> Issued:
        key = _key()
        return Issued(_cert(dns, key, ca.subject, ca_key, ca=False, dns=dns, days=days).public_bytes(pem), _pem_key(key))

    own = _key()
    return Pki(
        ca=ca.public_bytes(pem),
        by_ca=issue(NAME),
        wildcard=issue("*.provider.example"),
        wrong_name=issue("other.provider.example"),
        expired=issue(NAME, days=(-30, -1)),
        self_signed=Issued(_cert(NAME, own, None, own, ca=False, dns=NAME).public_bytes(pem), _pem_key(own)),
    )


# ---------------------------------------------------------------------------- the smarthost


@dataclass
class Smarthost:
    """A STARTTLS + AUTH server on 127.0.0.1 that records what a client says after TLS."""

    issued: Issued
    workdir: Path
    port: int = 0
    tls_sessions: int = 0
    commands: list[str] = field(default_factory=list)  # every command line, after TLS
    received: bytearray = field(default_factory=bytearray)  # every byte read, decrypted
    credentials: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.workdir / "server.crt").write_bytes(self.issued.cert)
        (self.workdir / "server.key").write_bytes(self.issued.key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.workdir / "server.crt", self.workdir / "server.key")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with suppress(OSError, ssl.SSLError), conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        stream = conn.makefile("rwb")
        tls = False

        def say(*lines: str) -> None:
            stream.write("".join(f"{line}\r\n" for line in lines).encode())
            stream.flush()

        def read() -> bytes:
            line = stream.readline(4096)
            self.received.extend(line)
            return line

        say(f"220 {NAME} ESMTP")
        while line := read():
            command = line.decode("latin-1").strip()
            verb = command.split(" ", 1)[0].upper()
            if tls:
                self.commands.append(command)
            if verb == "EHLO":
                say(f"250-{NAME}", "250-AUTH PLAIN LOGIN" if tls else "250-STARTTLS", "250 8BITMIME")
            elif verb == "STARTTLS" and not tls:
                say("220 2.0.0 go ahead")
                conn = self.context.wrap_socket(conn, server_side=True)
                stream = conn.makefile("rwb")
                tls = True
                self.tls_sessions += 1
            elif verb == "AUTH" and tls:
                parts = command.split()
                if parts[1].upper() == "PLAIN":
                    if len(parts) < 3:
                        say("334 ")
                        parts.append(read().decode().strip())
                    self.credentials.append(base64.b64decode(parts[2]))
                else:
                    say("334 VXNlcm5hbWU6")
                    user = base64.b64decode(read().strip())
                    say("334 UGFzc3dvcmQ6")
                    self.credentials.append(b"\0" + user + b"\0" + base64.b64decode(read().strip()))
                say("235 2.7.0 Authentication successful")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                say("250 2.0.0 ok")
            elif verb == "DATA":
                say("354 go on")
                body = bytearray()
                while (chunk := read()) not in (b".\r\n", b""):
                    body.extend(chunk)
                self.messages.append(bytes(body))
                say("250 2.0.0 queued")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.2 not here")


# ---------------------------------------------------------------------------- the rendered settings


def site_yaml(port: int, with_ca: bool) -> str:
    """The conftest's minimal site plus a relay host that sends through the smarthost."""
    ca = "\n    tls_ca: {file: certs/provider-ca.pem}" if with_ca else ""
    relay = (
        "  out1:\n    fqdn: out1.t.example\n    ipv4: [192.0.2.11]\n    services: [relay]\n"
        f"relay:\n  networks: [192.168.10.0/24]\n  smarthost:\n    host: {NAME}\n    port: {port}\n"
        f"    username: {USER}\n    password: {{env: SMARTHOST_PASSWORD}}{ca}\n"
    )
    assert "\ndomains:\n" in MINIMAL
    return MINIMAL.replace("\ndomains:\n", f"\n{relay}domains:\n", 1)


def render_relay(tmp_path: Path, port: int, ca: bytes | None) -> HostTree:
    site_dir = tmp_path / "site"
    (site_dir / "certs").mkdir(parents=True)
    (site_dir / "site.yaml").write_text(site_yaml(port, ca is not None))
    if ca is not None:
        (site_dir / "certs/provider-ca.pem").write_bytes(ca)
    loaded = load_site(site_dir / "site.yaml")
    keys, _ = ensure_keys(loaded.site, tmp_path / "state", today=FIXED_DAY, workers=1)
    return render_site(loaded, keys, tmp_path / "state", {"SMARTHOST_PASSWORD": PASSWORD})["out1"]


def client_settings(tree: HostTree) -> list[tuple[str, str]]:
    """relayhost and every smtp_* parameter of the rendered main.cf: the outbound client."""
    out = []
    for line in tree.files["etc/postfix/main.cf"].content.decode().splitlines():
        key, sep, value = line.partition(" = ")
        if sep and (key == "relayhost" or key.startswith("smtp_")):
            out.append((key, value))
    return out


# ---------------------------------------------------------------------------- a throwaway Postfix

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Instance:
    root: Path
    port: int

    @property
    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def postfix_instance(tree: HostTree) -> Iterator[Instance]:
    """Start Postfix with the rendered client settings and tables; stop it and remove it after."""
    # Postfix's unprivileged daemons read the policy's tafile and the queue: not under pytest's 0700 tmp.
    root = Path(tempfile.mkdtemp(prefix="provision-smarthost-"))
    root.chmod(0o755)
    etc, ssl_dir, data = root / "etc", root / "ssl", root / "data"
    for d in (etc, ssl_dir, data, root / "queue"):
        d.mkdir(mode=0o755)
    shutil.chown(data, "postfix")

    def here(text: str) -> str:  # the host's paths, pointed into this instance
        return text.replace("/etc/postfix/", f"{etc}/").replace("/etc/ssl/provisioner/", f"{ssl_dir}/")

    for path, f in tree.files.items():
        if path.startswith("etc/ssl/provisioner/"):
            (ssl_dir / Path(path).name).write_bytes(f.content)
    port = free_port()
    harness = {
        "compatibility_level": "3.6",
        "queue_directory": f"{root}/queue",
        "data_directory": str(data),
        "myhostname": "out1.t.example",
        "mydestination": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "maillog_file": f"{root}/maillog",
        "maillog_file_prefixes": str(root),
        "smtp_host_lookup": "native",  # the name resolves through the namespace's /etc/hosts
    }
    rendered = client_settings(tree)
    assert not {k for k, _ in rendered} & set(harness), "the harness must not override a rendered setting"
    (etc / "main.cf").write_text("".join(f"{k} = {here(v)}\n" for k, v in [*harness.items(), *rendered]))
    (etc / "master.cf").write_text(MASTER_CF.format(port=port))
    for table in ("sasl_passwd", "tls_policy"):
        (etc / table).write_text(here(tree.files[f"etc/postfix/{table}"].content.decode()))
        (etc / table).chmod(0o600)
        subprocess.run(["postmap", "-c", str(etc), f"lmdb:{etc / table}"], check=True)
    hosts = root / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {NAME}\n")
    started = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" /etc/hosts && exec postfix -c "$2" start',
            "sh",
            str(hosts),
            str(etc),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    pid_file = root / "queue/pid/master.pid"
    try:
        instance = Instance(root, port)
        assert started.returncode == 0, started.stderr + instance.log
        yield instance
    finally:
        master = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while master and time.monotonic() < deadline and Path(f"/proc/{master}").exists():
            time.sleep(0.1)
        if master and Path(f"/proc/{master}").exists():
            os.kill(master, 9)  # the master we started, by its pid
        shutil.rmtree(root, ignore_errors=True)


def deliver(instance: Instance) -> str:
    """Hand one message to the instance; return its delivery log line once it has one."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", instance.port, timeout=10) as client:
        client.ehlo("client.t.example")
        client.mail("alice@t.example")
        client.rcpt("someone@far.example")
        code, reply = client.data(b"From: alice@t.example\r\nTo: someone@far.example\r\nSubject: through the smarthost\r\n\r\nhello\r\n")
    assert code == 250, reply
    queue_id = re.search(r"queued as ([0-9A-F]+)", reply.decode())
    assert queue_id, reply
    deadline = time.monotonic() + 30
    pattern = re.compile(rf"{queue_id[1]}: to=<someone@far\.example>.*status=\w+.*")
    while time.monotonic() < deadline:
        found = pattern.search(instance.log)
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError("no delivery attempt logged within 30 s:\n" + instance.log)


# ---------------------------------------------------------------------------- the tests


def attempt(served: Issued, site_ca: bytes | None, tmp_path: Path) -> tuple[Smarthost, str, str]:
    """One delivery through a smarthost showing `served`: the server, the delivery line, the log."""
    server = Smarthost(served, tmp_path)
    try:
        tree = render_relay(tmp_path, server.port, site_ca)
        with postfix_instance(tree) as instance:
            return server, deliver(instance), instance.log
    finally:
        server.stop()


@dataclass(frozen=True)
class Case:
    served: str  # which certificate the smarthost shows (a Pki field)
    site_ca: bool  # relay.smarthost.tls_ca given


REFUSED = {
    # the system's trust store, as render sets it by default: an unknown issuer is refused
    "self-signed, system trust store": Case("self_signed", site_ca=False),
    "private CA, not declared in the site": Case("by_ca", site_ca=False),
    # a declared private CA does not let anything else through
    "self-signed, site's CA": Case("self_signed", site_ca=True),
    "site's CA, another name": Case("wrong_name", site_ca=True),
    "site's CA, expired": Case("expired", site_ca=True),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_unverified_smarthost_never_sees_the_password(case: Case, pki: Pki, tmp_path: Path) -> None:
    server, line, log = attempt(getattr(pki, case.served), pki.ca if case.site_ca else None, tmp_path)
    assert "status=deferred" in line, line
    assert "Server certificate not verified" in line or "certificate verification failed" in log, log
    assert "Verified TLS connection established" not in log
    assert server.tls_sessions >= 1, "the test must reach the TLS handshake to prove anything"
    assert not any(c.upper().startswith("AUTH") for c in server.commands), server.commands
    assert PASSWORD.encode() not in server.received and base64.b64encode(PASSWORD.encode()) not in server.received
    assert server.credentials == [] and server.messages == []


@pytest.mark.parametrize("served", ["by_ca", "wildcard"])
def test_smarthost_with_the_sites_private_ca_gets_the_login_and_the_mail(served: str, pki: Pki, tmp_path: Path) -> None:
    server, line, log = attempt(getattr(pki, served), pki.ca, tmp_path)
    assert "status=sent" in line, log
    assert f"Verified TLS connection established to {NAME}[127.0.0.1]:{server.port}" in log
    assert server.credentials == [f"\0{USER}\0{PASSWORD}".encode()]
    assert len(server.messages) == 1 and b"Subject: through the smarthost" in server.messages[0]


# ---------------------------------------------------------------------------- the role


def test_the_role_installs_sasl_mechanisms_and_cas_where_a_smarthost_is_configured(tmp_path: Path) -> None:
    """The role's own package expression, evaluated by Ansible against rendered manifests."""
    import json

    import yaml

    from tests.render.helpers import render_example

    if not shutil.which("ansible-playbook", path=str(ROOT / ".venv/bin")):
        pytest.skip("ansible-playbook is installed by tests/run.sh")
    tasks = yaml.safe_load((ROOT / "roles/mailhost/tasks/main.yml").read_text())
    install = next(t for t in tasks if t["name"] == "Install the mail packages")["ansible.builtin.apt"]["name"].strip()
    assert install.startswith("{{") and install.endswith("}}"), install
    wanted = {}
    for example in ("multi-host", "all-in-one"):
        _, out = render_example(example, tmp_path / example)
        for host, entry in json.loads((out / "manifest.json").read_text())["hosts"].items():
            services = [
                s
                for s, marker in (("postfix", "/etc/postfix/main.cf"), ("dovecot", "/etc/dovecot/dovecot.conf"))
                if marker in {f["path"] for f in entry["files"]}
            ]
            wanted[f"{example}/{host}"] = {"mailhost_services": services, "mailhost_manifest": entry}
    playbook = tmp_path / "packages.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars_files": [str(ROOT / "roles/mailhost/defaults/main.yml"), str(tmp_path / "cases.yml")],
                    "tasks": [
                        {
                            "ansible.builtin.copy": {
                                "dest": f"{tmp_path}/{{{{ item | replace('/', '_') }}}}.json",
                                "content": "{{ (" + install[2:-2] + ") | to_json }}",
                                "mode": "0644",
                            },
                            "loop": list(wanted),
                            "vars": {"mailhost_services": "{{ cases[item].mailhost_services }}", "mailhost_manifest": "{{ cases[item].mailhost_manifest }}"},
                        }
                    ],
                }
            ]
        )
    )
    (tmp_path / "cases.yml").write_text(yaml.safe_dump({"cases": wanted}))
    result = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = {case: json.loads((tmp_path / f"{case.replace('/', '_')}.json").read_text()) for case in wanted}
    assert set(found) == set(wanted), result.stdout
    for case, packages in found.items():
        smarthost = case.startswith("multi-host/")  # every host of that site sends through the smarthost
        assert ("libsasl2-modules" in packages and "ca-certificates" in packages) == smarthost, (case, packages)
        assert "postfix" in packages, (case, packages)
