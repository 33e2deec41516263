"""The senders of issue 15's inbound cases on the test network: their zones (served by the test
nsd, next to the site's), their DKIM key, and the messages they send (dkimpy signs and ARC-seals).

Domains, each with SPF `ip4:<inet> -all` (inet is every sender's one authorised address) and a
DKIM key at s1._domainkey (the same RSA key for all, made per run):
    reject.test      DMARC p=reject
    quarantine.test  DMARC p=quarantine
    none.test        DMARC p=none
    forwarder.test   a mailing list the site trusts (policy.inbound.trusted_forwarders): ARC sealer
The "stranger" node (192.0.2.66, stranger.foreign.test) is an address no sender authorises.
"""

from __future__ import annotations

import base64
import email.utils
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.render.test_inbound_live import GTUBE, SENDER, _sender_zone, signed

POLICIES = {"reject.test": "reject", "quarantine.test": "quarantine", "none.test": "none", "forwarder.test": "none"}
FORWARDER = "forwarder.test"
SELECTOR = "s1"
STRANGER = ("192.0.2.66", "stranger.foreign.test")
__all__ = ["GTUBE", "FORWARDER", "POLICIES", "SELECTOR", "STRANGER", "Senders", "forwarded", "message", "signed"]


@dataclass(frozen=True)
class Senders:
    __test__ = False

    pem: bytes  # the senders' DKIM private key (PKCS#8)
    zones: dict[str, str]


def make_senders(authorised: str) -> Senders:
    """A fresh key and the senders' zones, `authorised` their SPF's one address."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = base64.b64encode(private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Senders(pem, {zone: _sender_zone(zone, policy, public).replace(SENDER, authorised) for zone, policy in POLICIES.items()})


def message(sender: str, to: str, subject: str, body: bytes = b"Lunch at noon?\r\n", extra: bytes = b"") -> bytes:
    """A plain message with CRLF line ends (what DKIM signs), `extra` header lines on top."""
    domain = sender.rsplit("@", 1)[1]
    return (
        extra
        + f"From: Someone <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: {email.utils.make_msgid(domain=domain)}\r\n".encode()
        + f"Date: {email.utils.formatdate()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n".encode()
        + body
    )


def broken(msg: bytes) -> bytes:
    """A signed message whose body changed on the way: the signature no longer verifies."""
    return msg.replace(b"Lunch at noon?", b"Lunch at one?")


def forwarded(original: bytes, pem: bytes) -> bytes:
    """A list at forwarder.test adds a footer (DKIM broken), records what it saw and seals it (RFC 8617)."""
    changed = original.replace(b"Lunch at noon?", b"Lunch at noon?\r\n-- \r\nlist footer")
    seen = f"Authentication-Results: lists.{FORWARDER}; dkim=pass header.d=reject.test; spf=pass smtp.mailfrom=reject.test; dmarc=pass\r\n"
    changed = seen.encode() + changed
    return b"".join(dkim.arc_sign(changed, SELECTOR.encode(), FORWARDER.encode(), pem, f"lists.{FORWARDER}".encode())) + changed
