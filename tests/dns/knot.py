"""A real Knot DNS on a loopback address that takes RFC 2136 updates and zone transfers signed
with TSIG: the provider `provision dns push` talks to through octoDNS (octodns_bind.Rfc2136Provider).

Each server has its own configuration, storage and zone files under a test's directory, is
started in the foreground by PID and stopped by that PID; nothing is left behind."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

KNOT_ADDRESS = "127.0.0.164"  # a loopback address of its own (tests/dns/conftest's nsd is on 127.0.0.153)
KEY_NAME = "provision-test"


def free_port(address: str = KNOT_ADDRESS) -> int:
    """A port free for both UDP and TCP on `address` (the kernel picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port")


@dataclass
class Knot:
    workdir: Path
    address: str
    port: int
    secret: str  # base64 TSIG secret (hmac-sha256)
    zones: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"{self.address}:{self.port}"

    def query(self, name: str, rtype: str) -> list[str]:
        """The values served for (name, type), as text, sorted; [] when there are none."""
        response = dns.query.tcp(dns.message.make_query(name, rtype), self.address, port=self.port, timeout=3)
        wanted = dns.rdatatype.from_text(rtype)
        return sorted(rd.to_text() for rrset in response.answer if rrset.rdtype == wanted for rd in rrset)

    def txt(self, name: str) -> list[str]:
        """TXT values joined from their strings (what a resolver's user reads)."""
        response = dns.query.tcp(dns.message.make_query(name, "TXT"), self.address, port=self.port, timeout=3)
        return sorted(b"".join(rd.strings).decode() for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT for rd in rrset)

    def update(self, zone: str, edit: str, name: str, rtype: str, *values: str, ttl: int = 3600) -> None:
        """A hand edit at the server (what knsupdate/nsupdate does): replace, add or delete."""
        keyring = dns.tsigkeyring.from_text({KEY_NAME: self.secret})
        update = dns.update.Update(zone, keyring=keyring, keyalgorithm="hmac-sha256")
        getattr(update, edit)(name, *((ttl, rtype, *values) if edit != "delete" else (rtype, *values)))
        response = dns.query.tcp(update, self.address, port=self.port, timeout=3)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def knsupdate(self, script: str) -> None:
        """Knot's own knsupdate with the TSIG key, reading `script` (a hand edit at the server)."""
        full = f"server {self.address} {self.port}\nkey hmac-sha256:{KEY_NAME} {self.secret}\n{script}\nsend\nquit\n"
        done = subprocess.run(["knsupdate"], input=full.encode(), capture_output=True, timeout=20)
        assert done.returncode == 0, done.stderr.decode()

    def start(self) -> None:
        conf = self.workdir / "knot.conf"
        self.proc = subprocess.Popen(["knotd", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                response = dns.query.udp(dns.message.make_query(self.zones[0], "SOA"), self.address, port=self.port, timeout=0.2)
                if response.answer:
                    return
            except (dns.exception.Timeout, OSError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited: {(self.workdir / 'knot.log').read_text()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("knotd did not answer")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def knot_server(workdir: Path, zones: dict[str, str], address: str = KNOT_ADDRESS) -> Knot:
    """Write a knot.conf, its key and the zones (name -> zone file text without SOA/NS: they are
    added), check it with knotc conf-check, and start knotd. The caller stops it."""
    if shutil.which("knotd") is None:
        raise RuntimeError("knot is not installed: run tests/run.sh, which installs it")
    for part in ("run", "db", "zones"):
        (workdir / part).mkdir(parents=True, exist_ok=True)
    secret = base64.b64encode(os.urandom(32)).decode()
    port = free_port(address)
    for zone, body in zones.items():
        head = f"$ORIGIN {zone}.\n$TTL 3600\n@ SOA ns1.{zone}. hostmaster.{zone}. 1 7200 3600 1209600 3600\n@ NS ns1.{zone}.\n"
        (workdir / "zones" / f"{zone}.zone").write_text(head + body)
    conf = workdir / "knot.conf"
    conf.write_text(
        "server:\n"
        f'    rundir: "{workdir}/run"\n'
        f"    listen: {address}@{port}\n"
        "    background-workers: 1\n    tcp-workers: 4\n    udp-workers: 2\n"
        f"log:\n  - target: {workdir}/knot.log\n    any: info\n"
        f'database:\n    storage: "{workdir}/db"\n'
        f"key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {secret}\n"
        f"acl:\n  - id: pushers\n    key: {KEY_NAME}\n    action: [update, transfer]\n"
        f'template:\n  - id: default\n    storage: "{workdir}/zones"\n    file: "%s.zone"\n    acl: pushers\n    semantic-checks: off\n'
        "zone:\n" + "".join(f"  - domain: {zone}\n" for zone in sorted(zones))
    )
    os.chmod(conf, 0o600)
    check = subprocess.run(["knotc", "-c", str(conf), "conf-check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    server = Knot(workdir, address, port, secret, sorted(zones))
    server.start()
    return server
