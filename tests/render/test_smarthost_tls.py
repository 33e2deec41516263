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
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.keys.store import ensure_keys
from provisioner.keys.tls import ensure_tls
from provisioner.render import render_site
from provisioner.render.postfix import IMPLICIT_TLS_PORT
from provisioner.render.tree import HostTree
from provisioner.site.validate import load_site
from tests.conftest import FIXED_DAY, MINIMAL, ROOT
from tests.network.smarthost import PASSWORD_ENV

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
SERVER = ROOT / "tests/network/smarthost.py"  # the test network's provider, here on loopback


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


def make_pki(name: str = NAME) -> Pki:
    """A private CA and certificates for `name` (and its wildcard, a sibling) from it."""
    parent = name.split(".", 1)[1]
    ca_key = _key()
    ca = _cert("Provider Test Root CA", ca_key, None, ca_key, ca=True, days=(-1, 365))
    pem = serialization.Encoding.PEM

    def issue(dns: str, days: tuple[int, int] = (-1, 30)) -> Issued:
        key = _key()
        return Issued(_cert(dns, key, ca.subject, ca_key, ca=False, dns=dns, days=days).public_bytes(pem), _pem_key(key))

    own = _key()
    return Pki(
        ca=ca.public_bytes(pem),
        by_ca=issue(name),
        wildcard=issue(f"*.{parent}"),
        wrong_name=issue(f"other.{parent}"),
        expired=issue(name, days=(-30, -1)),
        self_signed=Issued(_cert(name, own, None, own, ca=False, dns=name).public_bytes(pem), _pem_key(own)),
    )


# ---------------------------------------------------------------------------- the smarthost


@dataclass
class Smarthost:
    """tests/network/smarthost.py on 127.0.0.1 (STARTTLS, or implicit TLS): what a client said."""

    issued: Issued
    workdir: Path
    implicit: bool = False
    port: int = 0

    def __post_init__(self) -> None:
        cert, key = self.workdir / "server.crt", self.workdir / "server.key"
        cert.write_bytes(self.issued.cert)
        key.write_bytes(self.issued.key)
        self.out = self.workdir / "smarthost"
        mode = ["--implicit"] if self.implicit else []
        self.proc = subprocess.Popen(
            [sys.executable, *map(str, (SERVER, self.out)), "127.0.0.1", "0", "--cert", str(cert), "--key", str(key), "--user", USER, "--name", NAME, *mode],
            env={**os.environ, PASSWORD_ENV: PASSWORD},
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "smarthost.log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while not (self.out / "port").exists():
            assert self.proc.poll() is None and time.monotonic() < deadline, (self.workdir / "smarthost.log").read_text()
            time.sleep(0.05)
        self.port = int((self.out / "port").read_text())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    @property
    def sessions(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("session-*.json"))]

    @property
    def tls_sessions(self) -> int:
        return sum(1 for s in self.sessions if s["tls"])

    @property
    def commands(self) -> list[str]:
        """Every line read after TLS was on."""
        return [line for s in self.sessions for tls, line in s["lines"] if tls]

    @property
    def received(self) -> bytes:
        """Every line read, decrypted, as one byte string."""
        return "\n".join(line for s in self.sessions for _, line in s["lines"]).encode("latin-1")

    @property
    def credentials(self) -> list[bytes]:
        return [f"\0{login['username']}\0{login['password']}".encode() for s in self.sessions for login in s["logins"]]

    @property
    def messages(self) -> list[bytes]:
        return [json.loads(p.read_text())["data"].encode("utf-8", "surrogateescape") for p in sorted(self.out.glob("[0-9]*.json"))]


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
    ensure_tls(loaded.site, keys)
    return render_site(loaded, keys, tmp_path / "state", {"SMARTHOST_PASSWORD": PASSWORD})["out1"]


def client_settings(tree: HostTree) -> list[tuple[str, str]]:
    """relayhost, default_transport and every smtp_* parameter of the rendered main.cf: the outbound client."""
    out = []
    for line in tree.files["etc/postfix/main.cf"].content.decode().splitlines():
        key, sep, value = line.partition(" = ")
        if sep and (key in ("relayhost", "default_transport") or key.startswith("smtp_")):
            out.append((key, value))
    return out


def client_services(tree: HostTree) -> str:
    """The rendered master.cf's smtp(8) client services that the harness lacks (the smarthost on 465)."""
    out, keep = [], False
    for line in tree.files["etc/postfix/master.cf"].content.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if not line[0].isspace():
            fields = line.split()
            keep = fields[1] == "unix" and fields[7] == "smtp" and fields[0] not in ("smtp", "relay")
        if keep:
            out.append(f"{line}\n")
    return "".join(out)


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
def postfix_instance(tree: HostTree, moved: tuple[str, str] | None = None) -> Iterator[Instance]:
    """Start Postfix with the rendered client settings, smtp services and tables; stop it and
    remove it after. `moved`: the rendered next hop and where the test's server really listens
    (a site says 465; the server takes a free port, so no test binds a well-known one)."""
    # Postfix's unprivileged daemons read the policy's tafile and the queue: not under pytest's 0700 tmp.
    root = Path(tempfile.mkdtemp(prefix="provision-smarthost-"))
    root.chmod(0o755)
    etc, ssl_dir, data = root / "etc", root / "ssl", root / "data"
    for d in (etc, ssl_dir, data, root / "queue"):
        d.mkdir(mode=0o755)
    shutil.chown(data, "postfix")

    def here(text: str) -> str:  # the host's paths, pointed into this instance
        text = text.replace("/etc/postfix/", f"{etc}/").replace("/etc/ssl/provisioner/", f"{ssl_dir}/")
        return text.replace(*moved) if moved else text

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
    (etc / "master.cf").write_text(MASTER_CF.format(port=port) + client_services(tree))
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
    with running(Instance(root, port), etc, started) as instance:
        yield instance


@contextmanager
def running(instance: Instance, etc: Path, started: subprocess.CompletedProcess[str]) -> Iterator[Instance]:
    """A throwaway Postfix that `postfix -c ETC start` started: stopped (its master killed by
    its pid if it lingers) and its directory removed afterwards, whatever the test did."""
    pid_file = instance.root / "queue/pid/master.pid"
    try:
        assert started.returncode == 0, started.stderr + instance.log
        yield instance
    finally:
        master = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while master and time.monotonic() < deadline and Path(f"/proc/{master}").exists():
            time.sleep(0.1)
        if master and Path(f"/proc/{master}").exists():
            os.kill(master, 9)  # the master this test started, by its pid
        shutil.rmtree(instance.root, ignore_errors=True)


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


def attempt(served: Issued, site_ca: bytes | None, tmp_path: Path, implicit: bool = False) -> tuple[Smarthost, str, str]:
    """One delivery through a smarthost showing `served`: the server, the delivery line, the log.
    implicit: the site says port 465 and the server speaks TLS first (RFC 8314)."""
    server = Smarthost(served, tmp_path, implicit)
    try:
        tree = render_relay(tmp_path, IMPLICIT_TLS_PORT if implicit else server.port, site_ca)
        moved = (f"[{NAME}]:{IMPLICIT_TLS_PORT}", f"[{NAME}]:{server.port}") if implicit else None
        with postfix_instance(tree, moved) as instance:
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


# The same refusals when the smarthost is on 465 (TLS from the first byte): one untrusted chain
# and one wrong name (the two checks of 'secure'), not every case again, for CI time.
IMPLICIT_REFUSED = ("private CA, not declared in the site", "site's CA, another name")
REFUSALS = [pytest.param(case, False, id=f"587 {name}") for name, case in REFUSED.items()] + [
    pytest.param(REFUSED[name], True, id=f"465 {name}") for name in IMPLICIT_REFUSED
]


@pytest.mark.parametrize(("case", "implicit"), REFUSALS)
def test_unverified_smarthost_never_sees_the_password(case: Case, implicit: bool, pki: Pki, tmp_path: Path) -> None:
    server, line, log = attempt(getattr(pki, case.served), pki.ca if case.site_ca else None, tmp_path, implicit)
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


def test_smarthost_on_465_gets_tls_first_then_the_login_and_the_mail(pki: Pki, tmp_path: Path) -> None:
    """RFC 8314 implicit TLS: Postfix must not wait for a greeting in the clear or send STARTTLS."""
    server, line, log = attempt(pki.by_ca, pki.ca, tmp_path, implicit=True)
    assert "status=sent" in line and f"relay={NAME}[127.0.0.1]:{server.port}" in line, log
    assert re.search(r"postfix/smarthost/smtp\[\d+\]: " + re.escape(line), log), log  # the dedicated wrapper-mode service delivered it
    assert f"Verified TLS connection established to {NAME}[127.0.0.1]:{server.port}" in log
    sessions = server.sessions
    assert sessions and all(s["implicit"] and s["tls"] in ("TLSv1.2", "TLSv1.3") for s in sessions), sessions
    assert not any(c.upper().startswith("STARTTLS") for c in server.commands), server.commands
    assert server.credentials == [f"\0{USER}\0{PASSWORD}".encode()]
    assert len(server.messages) == 1 and b"Subject: through the smarthost" in server.messages[0]


@pytest.mark.parametrize("port", [25, 465, 587, 2525])
def test_only_a_465_smarthost_gets_the_wrapper_mode_service(port: int, tmp_path: Path) -> None:
    """Wrapper mode is for the smarthost alone: the own-domain and partner routes keep `smtp` and STARTTLS."""
    tree = render_relay(tmp_path, port, None)
    main = dict(client_settings(tree))
    services = client_services(tree)
    master = tree.files["etc/postfix/master.cf"].content.decode()
    assert main["relayhost"] == f"[{NAME}]:{port}"
    if port == IMPLICIT_TLS_PORT:
        assert main["default_transport"] == "smarthost", main
        assert services.split()[:8] == ["smarthost", "unix", "-", "-", "n", "-", "-", "smtp"], services
        assert "-o smtp_tls_wrappermode=yes" in services and master.count("smtp_tls_wrappermode") == 1, master
    else:
        assert "default_transport" not in main and services == "" and "wrappermode=yes\n" not in master.replace("smtpd_tls_wrappermode=yes\n", "")
    routes = [line.split()[1] for line in tree.files["etc/postfix/transport"].content.decode().splitlines() if line and not line.startswith("#")]
    assert routes and all(r.startswith("smtp:") for r in routes), routes  # own domains by MX: plain smtp, STARTTLS
    assert "secure match=nexthop" in tree.files["etc/postfix/tls_policy"].content.decode()


# ---------------------------------------------------------------------------- the role


def test_the_role_installs_sasl_mechanisms_and_cas_where_a_smarthost_is_configured(tmp_path: Path) -> None:
    """The role's own package expression, evaluated by Ansible against rendered manifests."""
    import json

    import yaml

    from tests.render.helpers import render_example

    if not shutil.which("ansible-playbook", path=str(ROOT / ".venv/bin")):
        pytest.skip("ansible-playbook is installed by tests/run.sh")
    # What the host needs (the role's probe then finds what is missing, and apt installs that).
    install = yaml.safe_load((ROOT / "roles/mailhost/vars/main.yml").read_text())["mailhost_wanted_packages"].strip()
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
