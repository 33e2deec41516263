"""The public half of a DKIM key, as DKIM publishes it (RFC 6376 §3.6.1, RFC 8463 §4)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import STATE_DIR_MODE


def dkim_public_value(private_pem: bytes) -> tuple[str, str]:
    """(k=, p=) for a private key: RSA as base64 SubjectPublicKeyInfo, ed25519 as the bare 32 bytes."""
    # Our own keys, from our state: RSA's consistency check (about 47 ms a key) buys nothing here.
    key = serialization.load_pem_private_key(private_pem, password=None, unsafe_skip_rsa_key_validation=True)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "ed25519", base64.b64encode(raw).decode()
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "rsa", base64.b64encode(der).decode()
    raise ProvisionError("unsupported DKIM key type")


def cached_public_value(private_path: Path, read_private: Callable[[], bytes]) -> tuple[str, str]:
    """The public value, cached beside the key as <selector>.pub (public, not secret).

    Deriving it means decrypting (vault) and parsing the private key; the cache makes a
    warm render of thousands of domains cost a file read per selector.
    """
    cache = private_path.with_suffix(".pub")
    try:
        k, _, p = cache.read_text(encoding="ascii").strip().partition(" ")
        if k and p:
            return k, p
    except OSError:
        pass
    k, p = dkim_public_value(read_private())
    atomic_write(cache, f"{k} {p}\n", 0o644, STATE_DIR_MODE)  # its mode whatever the umask; no link at a guessable name followed
    return k, p
