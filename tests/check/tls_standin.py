"""Stand-in TLS servers on loopback for `check --tls`: a test CA made with `cryptography`, and one
small threaded server per endpoint speaking just enough of SMTP (STARTTLS or implicit), IMAP,
POP3 or HTTPS (a policy file) — or junk. Each server is closed at teardown (its thread joined,
its socket closed); nothing runs outside this process."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ADDRESS = "127.0.0.176"  # nothing else listens here: the ports a test does not serve are refused
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Leaf:
    cert: Path  # PEM: the certificate, then the CA (a full chain)
    key: Path
    der: bytes  # the certificate alone


class TestCa:
    """A private root CA writing leaf certificates into `workdir`."""

    __test__ = False  # not a test class

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provision check test root")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=400))
            .not_valid_after(NOW + dt.timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.path = workdir / "ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.count = 0

    def issue(self, *names: str, age_days: float = 1, days_left: float = 89, key: ec.EllipticCurvePrivateKey | None = None) -> Leaf:
        """A leaf for `names`, valid from `age_days` ago for `days_left` more days."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=age_days))
            .not_valid_after(NOW + dt.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.count += 1
        cert_path, key_path = self.workdir / f"leaf{self.count}.pem", self.workdir / f"leaf{self.count}.key"
        pem = serialization.Encoding.PEM
        cert_path.write_bytes(cert.public_bytes(pem) + self.cert.public_bytes(pem))
        key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o600)
        return Leaf(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def http_answer(body: bytes, content_type: str = "text/plain", status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode("latin-1") + body


@dataclass
class StandIn:
    """One endpoint: `kind` is smtp (STARTTLS; `auth` after TLS), smtps, imaps, pop3s, https, or junk.
    https answers every request with `answer` (raw HTTP bytes), after `delay` seconds per byte
    when `trickle` is set."""

    kind: str
    leaf: Leaf | None
    fqdn: str
    auth: bool = False
    answer: bytes = b""
    trickle: float = 0.0
    port: int = 0
    sni: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.leaf is not None:
            self.ctx.load_cert_chain(self.leaf.cert, self.leaf.key)
        self.ctx.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.server = socket.create_server((ADDRESS, 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        sock: socket.socket = conn
        try:
            if self.kind == "junk":
                sock.sendall(b"\x1b[31m\x00\xff not a server \xe2\x80\xae\r\n")
                return
            if self.kind in ("smtps", "imaps", "pop3s", "https"):
                sock = self.ctx.wrap_socket(conn, server_side=True)
            if self.kind in ("smtp", "smtps"):
                self._smtp(sock, tls=self.kind == "smtps")
            elif self.kind == "imaps":
                self._imap(sock)
            elif self.kind == "pop3s":
                sock.sendall(b"+OK stand-in ready\r\n")
                if _line(sock).upper().startswith(b"QUIT"):
                    sock.sendall(b"+OK bye\r\n")
            elif self.kind == "https":
                self._https(sock)
        except (OSError, ssl.SSLError):
            pass  # a verifying client that gives up, a client that closes early
        finally:
            sock.close()
            conn.close()

    def _smtp(self, sock: socket.socket, tls: bool) -> None:
        sock.sendall(f"220 {self.fqdn} ESMTP stand-in\r\n".encode())
        while line := _line(sock):
            verb = line[:8].strip().upper()
            if verb.startswith((b"EHLO", b"HELO")):
                caps = [] if tls else ["STARTTLS"]
                caps += ["AUTH PLAIN"] if tls and self.auth else []
                text = "".join(f"250-{c}\r\n" for c in [self.fqdn, *caps][:-1]) + f"250 {[self.fqdn, *caps][-1]}\r\n"
                sock.sendall(text.encode())
            elif verb == b"STARTTLS" and not tls:
                sock.sendall(b"220 go ahead\r\n")
                sock = self.ctx.wrap_socket(sock, server_side=True)
                tls = True
            elif verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:
                sock.sendall(b"502 not here\r\n")

    def _imap(self, sock: socket.socket) -> None:
        sock.sendall(b"* OK stand-in ready\r\n")
        while line := _line(sock):
            tag, _, command = line.decode("latin-1").strip().partition(" ")
            if command.upper() == "CAPABILITY":
                sock.sendall(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
            elif command.upper() == "LOGOUT":
                sock.sendall(f"* BYE\r\n{tag} OK bye\r\n".encode())
                return
            else:
                sock.sendall(f"{tag} BAD no\r\n".encode())

    def _https(self, sock: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        if not self.trickle:
            sock.sendall(self.answer)
            return
        for byte in self.answer:
            if self.stopping.is_set():
                return
            sock.sendall(bytes([byte]))
            time.sleep(self.trickle)

    def close(self) -> None:
        self.stopping.set()
        self.acceptor.join(timeout=5)
        self.server.close()
        for thread in self.threads:
            thread.join(timeout=5)
        assert not any(t.is_alive() for t in self.threads), f"a {self.kind} stand-in connection is still open"


def _line(sock: socket.socket, limit: int = 4096) -> bytes:
    out = b""
    while not out.endswith(b"\n") and len(out) < limit:
        byte = sock.recv(1)
        if not byte:
            break
        out += byte
    return out
