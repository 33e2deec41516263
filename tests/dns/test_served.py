"""The generated zones, served by a real nsd, judged by outside tools: dnspython, opendkim-testkey,
checkdmarc and dkimpy. Nothing here leaves the loopback address."""

from __future__ import annotations

import base64
import ipaddress
import subprocess
from email.message import EmailMessage
from pathlib import Path

import checkdmarc.dmarc
import checkdmarc.spf
import dkim
import dns.rdatatype
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from provisioner.keys.store import KeyStatus
from tests.dns.conftest import Served


def test_every_record_is_served_as_generated(served: Served) -> None:
    for record in served.records.records:
        answers = served.query(record.name, record.type)
        assert answers, f"{record.name} {record.type} not served"
        values = []
        for rrset in answers:
            for rd in rrset:
                if rd.rdtype == dns.rdatatype.TXT:
                    values.append(b"".join(rd.strings).decode())  # joined without spaces
                else:
                    values.append(rd.to_text())
        assert record.value in values or record.value.rstrip(".") in [v.rstrip(".") for v in values], (record, values)


def unbound_conf(served: Served) -> str:
    zones = served.records.zones()
    lines = ["server:", "  do-not-query-localhost: no"]
    for tld in sorted({z.rsplit(".", 1)[-1] for z in zones}):
        lines += [f'  local-zone: "{tld}." nodefault', f'  domain-insecure: "{tld}."']
    for zone in zones:
        lines += ["stub-zone:", f'  name: "{zone}."', f"  stub-addr: {served.address}@{served.port}"]
    return "\n".join(lines) + "\n"


def test_policy_resolvers_line_lets_opendkim_find_the_keys(served: Served, tmp_path) -> None:
    """With policy.resolvers, the rendered opendkim.conf asks that resolver (Nameservers) instead
    of recursing from the root: OpenDKIM's own checker, given only our resolver lines, finds
    every signing key on the nsd. (The test network cannot show this: its names end in .test,
    which libunbound answers NXDOMAIN by itself, RFC 6761.)"""
    from provisioner.render.opendkim import add_opendkim
    from provisioner.render.tree import HostTree

    site = served.site.model_copy(update={"policy": served.site.policy.model_copy(update={"resolvers": (ipaddress.ip_address(served.address),)})})
    host = next(h for h in site.hosts.values() if h.signs_mail)
    tree = HostTree(host.fqdn)
    add_opendkim(tree, site, host, served.keys)
    rendered = tree.files["etc/opendkim.conf"].content.decode()
    resolver_lines = [line for line in rendered.splitlines() if line.split("\t", 1)[0] in ("Nameservers", "TrustAnchorFile", "ResolverConfiguration")]
    assert resolver_lines == [f"Nameservers\t\t{served.address}"], resolver_lines
    conf = tmp_path / "opendkim-testkey.conf"
    conf.write_text("\n".join(resolver_lines) + "\n")
    assert _testkey_every_rsa_key(served, conf, tmp_path, (KeyStatus.ACTIVE,)) >= 1


def test_opendkim_testkey_says_key_ok(served: Served) -> None:
    """OpenDKIM's own checker (libunbound, stubbed to our nsd) for every signing RSA selector."""
    resolver = served.workdir / "unbound.conf"
    resolver.write_text(unbound_conf(served))
    conf = served.workdir / "opendkim-testkey.conf"
    conf.write_text(f"ResolverConfiguration {resolver}\n")
    assert _testkey_every_rsa_key(served, conf, served.workdir, (KeyStatus.ACTIVE, KeyStatus.STANDBY)) >= 2


def _testkey_every_rsa_key(served: Served, conf: Path, workdir: Path, statuses: tuple[KeyStatus, ...]) -> int:
    """opendkim-testkey -x CONF for every RSA key of the site; each must say "key OK"."""
    checked = 0
    for domain in served.site.domains:
        for key in served.keys.keys(domain, statuses):
            if key.algorithm == "ed25519":
                continue  # opendkim-testkey 2.11 parses only RSA; ed25519 is judged by dkimpy below
            pem = workdir / f"{key.selector}.{domain}.private"
            pem.write_bytes(served.keys.read_private(key))
            pem.chmod(0o600)
            result = subprocess.run(
                ["opendkim-testkey", "-x", str(conf), "-d", domain, "-s", key.selector, "-k", str(pem), "-vvv"], capture_output=True, text=True
            )
            assert "key OK" in result.stdout + result.stderr, (domain, key.selector, result.stdout, result.stderr)
            checked += 1
    return checked


def test_checkdmarc_finds_spf_and_dmarc_valid(served: Served) -> None:
    for domain in served.site.domains:
        spf = checkdmarc.spf.check_spf(domain, nameservers=[served.address], timeout=3)
        assert spf["valid"], (domain, spf)
        assert spf["record"] == next(r.value for r in served.records.records if r.name == domain and r.type == "TXT")
        dmarc = checkdmarc.dmarc.check_dmarc(domain, nameservers=[served.address], timeout=3)
        assert dmarc["valid"], (domain, dmarc)
        assert dmarc["tags"]["p"]["value"] in ("quarantine", "reject")


def _dnsfunc(served: Served):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        answers = served.query(name.decode().rstrip("."), "TXT")
        for rrset in answers:
            for rd in rrset:
                return b"".join(rd.strings)
        return None

    return lookup


def test_dkimpy_verifies_messages_signed_with_our_keys(served: Served) -> None:
    """Every signing key of every domain, RSA and ed25519 (RFC 8463) alike."""
    verified = set()
    for domain in sorted(served.site.domains):
        for key in served.keys.signing_keys(domain):
            _sign_and_verify(served, domain, key)
            verified.add(key.algorithm)
    assert "rsa-2048" in verified
    if any(k.value == "ed25519" for k in served.site.policy.dkim.keys):
        assert "ed25519" in verified


def _sign_and_verify(served: Served, domain: str, key) -> None:
    algorithm = key.algorithm
    pem = served.keys.read_private(key)
    if algorithm == "ed25519":
        private = serialization.load_pem_private_key(pem, None)
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        secret = base64.b64encode(private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
        sign_kwargs = {"signature_algorithm": b"ed25519-sha256"}
    else:
        secret = pem
        sign_kwargs = {}
    msg = EmailMessage()
    msg["From"] = f"alice@{domain}"
    msg["To"] = "someone@elsewhere.example"
    msg["Subject"] = "DKIM round trip"
    msg.set_content("Signed with the key provisioner keeps, verified against the record it publishes.\n")
    raw = msg.as_bytes()
    signature = dkim.sign(raw, key.selector.encode(), domain.encode(), secret, include_headers=[b"from", b"to", b"subject"], **sign_kwargs)
    assert dkim.verify(signature + raw, dnsfunc=_dnsfunc(served))
    tampered = signature + raw.replace(b"Signed with", b"Forged with")
    assert not dkim.verify(tampered, dnsfunc=_dnsfunc(served))
