"""A small world for `provision inspect`: the all-in-one example's zones (with the DKIM keys
`provision keys` made), a foreign sender's zones, and messages built and signed here the way
servers build them: the signer signs, each receiving server prepends its Received line, the
final one adds Return-Path. Served by a real nsd on 127.0.0.156 (dns tests use .153, check .154,
the benches .155); no test path reaches the system resolver."""

from __future__ import annotations

import base64
import shutil
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.mailauth.resolver import CachingResolver, DnsResolver, Nameserver, StaticResolver
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.check.conftest import no_system_resolver  # noqa: F401 - the fixture, applied here too
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop

INSPECT_ADDRESS = "127.0.0.156"
SITE_FILE = EXAMPLES / "all-in-one" / "site.yaml"
DOMAIN = "smallco.example"  # the site's domain: DMARC p=quarantine, SPF with mail.smallco.example's addresses
OUR_MX = "mail.smallco.example"  # the site's host: its name is the authserv-id OpenDKIM writes
OUR_IP = "192.0.2.10"
RECIPIENT_MX = "mx.recipient.test"  # a receiving server somebody trusts with --trust
EVIL = "evil.test"  # a foreign sender with SPF for 203.0.113.5 and a DKIM key of its own
EVIL_IP = "203.0.113.5"
LIST_IP = "198.51.100.20"  # a forwarder (mailing list) that is in nobody's SPF
BARE = "bare.test"  # a domain with no SPF, no DKIM, no DMARC
EVIL_SELECTOR = "ev1"
DATE = "Mon, 23 Nov 2026 10:00:00 +0000"


# ---------------------------------------------------------------------------- messages and a table resolver, for unit tests


def message(*headers: str, body: str = "hi\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def table(**extra: object) -> StaticResolver:
    rows: dict[tuple[str, str], object] = {
        ("example.org", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
        ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=reject; sp=quarantine; adkim=s"],
        ("x.test", "TXT"): ["v=spf1 ip4:192.0.2.9 -all"],
    }
    rows.update({tuple(k.split("|")): v for k, v in extra.items()})  # type: ignore[misc]
    return StaticResolver(rows)  # type: ignore[arg-type]


def _soa(origin: str) -> str:
    return f"$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 7200 3600 1209600 300\n@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.156\n"


def _txt(value: str) -> str:
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


@dataclass
class World:
    site: Site
    keys: KeyState
    zones: dict[str, str]
    workdir: Path
    our_selector: str
    our_key: bytes  # PEM, RSA
    evil_key: bytes  # PEM, RSA
    ed_selector: str
    ed_key: bytes  # raw base64 seed, as dkimpy takes ed25519 keys

    def resolver(self) -> CachingResolver:
        return CachingResolver(DnsResolver([Nameserver(INSPECT_ADDRESS, 53)], timeout=2.0))


def _rsa_public_b64(pem: bytes) -> str:
    key = serialization.load_pem_private_key(pem, None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def build_world(workdir: Path) -> World:
    site = load_site(SITE_FILE).site
    keys, _ = ensure_keys(site, workdir / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    (active,) = [k for k in keys.signing_keys(DOMAIN)]
    our_key = keys.read_private(active)

    evil_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_seed = ed.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    ed_public = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ed_selector = "ed1"
    # An ed25519 key beside the site's RSA one (RFC 8463), for the dual-signature case.
    zones[DOMAIN] += f"{ed_selector}._domainkey.{DOMAIN}. 300 IN TXT {_txt('v=DKIM1; k=ed25519; p=' + base64.b64encode(ed_public).decode())}\n"
    zones[DOMAIN] += f'gone1._domainkey.{DOMAIN}. 300 IN TXT "v=DKIM1; k=rsa; p="\n'  # withdrawn (RFC 6376 §3.6.1)
    zones[EVIL] = (
        _soa(EVIL)
        + f'@ IN TXT "v=spf1 ip4:{EVIL_IP} -all"\n'
        + f"{EVIL_SELECTOR}._domainkey IN TXT {_txt('v=DKIM1; k=rsa; p=' + _rsa_public_b64(evil_key))}\n"
        + f"mail IN A {EVIL_IP}\n"
    )
    zones[BARE] = _soa(BARE)
    # Reverse DNS of the foreign sender: .5 forward-confirms, .77 names a host that does not exist.
    zones["113.0.203.in-addr.arpa"] = _soa("113.0.203.in-addr.arpa") + f"5 IN PTR mail.{EVIL}.\n77 IN PTR bank-login.{EVIL}.\n"
    zones["recipient.test"] = _soa("recipient.test") + "mx IN A 192.0.2.200\n"
    return World(site, keys, zones, workdir, active.selector, our_key, evil_key, ed_selector, base64.b64encode(ed_seed))


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("inspect-world"))


@pytest.fixture(scope="session")
def served(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("nsd") is None:
        pytest.fail("nsd is not installed: run tests/run.sh, which installs it")
    proc = serve(world.zones, tmp_path_factory.mktemp("inspect-nsd"), INSPECT_ADDRESS, 53)
    try:
        yield world
    finally:
        stop(proc)


# ---------------------------------------------------------------------------- building messages


def compose(
    from_: str,
    *,
    to: str = "bob@recipient.test",
    subject: str = "Quarterly report",
    body: str = "Hello,\r\nthe report is attached.\r\n",
    extra: Sequence[str] = (),
    date: str = DATE,
) -> bytes:
    headers = [f"From: {from_}", f"To: {to}", f"Subject: {subject}", f"Date: {date}", "Message-ID: <20261123100000.1@test>", "MIME-Version: 1.0", *extra]
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def sign(message: bytes, domain: str, selector: str, key: bytes, algorithm: bytes = b"rsa-sha256") -> bytes:
    import dkim

    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        key,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        signature_algorithm=algorithm,
    )
    return signature + message


def received(helo: str, ip: str, rdns: str, by: str, when: str, protocol: str = "ESMTPS", recipient: str = "bob@recipient.test") -> bytes:
    """A Received line as Postfix writes it (RFC 5321 §4.4)."""
    tls = "\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))" if protocol.upper().startswith("ESMTPS") else ""
    return f"Received: from {helo} ({rdns} [{ip}]){tls}\r\n\tby {by} (Postfix) with {protocol} id 4Nx{zlib.crc32(when.encode()) % 99999}\r\n\tfor <{recipient}>; {when}\r\n".encode()


def deliver(message: bytes, *hops: bytes, mail_from: str | None = None, auth_results: Sequence[str] = ()) -> bytes:
    """What the final mailbox holds: Return-Path on top, then trusted Authentication-Results,
    then the Received lines, newest first (pass hops oldest first)."""
    top = b""
    if mail_from is not None:
        top += f"Return-Path: <{mail_from}>\r\n".encode()
    for value in auth_results:
        top += f"Authentication-Results: {value}\r\n".encode()
    for hop in reversed(hops):
        top += hop
    return top + message
