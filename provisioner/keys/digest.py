"""Keyed digests of secret files: what the manifest carries instead of a plain sha256.

A plain sha256 of `sasl_passwd`, whose other bytes are known, is an offline dictionary oracle
for the smarthost password; manifest.json is 0644 and `render --format json` ends up in CI logs.
So a secret file's entry carries HMAC-SHA256 (RFC 2104) of its bytes under a key that only the
state directory holds: `STATE/secret-digest.key`, 32 random bytes, 0600, made once (an
ansible-vault file when a vault password is given, like the DKIM keys), so an unchanged secret
keeps its digest from one render to the next.

Each host gets its own key derived from it (HMAC of the host name), and only its own: a host
compares its live files with the digests and holds the secrets themselves, so its key tells it
nothing it does not have, and nothing about another host's secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import TYPE_CHECKING

from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import STATE_DIR_MODE, VAULT_HEADER

if TYPE_CHECKING:
    from provisioner.keys.store import KeyState

KEY_FILE = "secret-digest.key"
_HEX_KEY = re.compile(rb"[0-9a-f]{64}")
_MAX_KEY_FILE = 1 << 16  # a vault file of 65 bytes is ~ 500


def state_digest_key(ks: KeyState) -> bytes:
    """The site's digest key from STATE/secret-digest.key, made on first use."""
    path = ks.state_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        text = os.urandom(32).hex().encode() + b"\n"
        atomic_write(path, ks.vault().encrypt(text) if ks.vault_password is not None else text, 0o600, STATE_DIR_MODE)
        return bytes.fromhex(text.decode())
    except OSError as exc:
        raise ProvisionError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(_MAX_KEY_FILE)
    if data.startswith(VAULT_HEADER):
        if ks.vault_password is None:
            raise ProvisionError(f"{path} is encrypted with ansible-vault; pass --vault-password-file FILE")
        from ansible.errors import AnsibleError

        try:
            data = ks.vault().decrypt(data)
        except AnsibleError:
            raise ProvisionError(f"cannot decrypt {path}: wrong vault password?") from None
    if not _HEX_KEY.fullmatch(data.strip()):
        raise ProvisionError(
            f"{path} is damaged (not 64 hex digits); delete it and render again: a new key is made, and the digests of secret files in the next manifest change"
        )
    return bytes.fromhex(data.strip().decode())


def host_digest_key(key: bytes, host: str) -> bytes:
    """The key one host's secret files are digested with."""
    return hmac.new(key, b"provisioner secret digest\0" + host.encode(), hashlib.sha256).digest()


def secret_digest(host_key: bytes, content: bytes) -> str:
    return hmac.new(host_key, content, hashlib.sha256).hexdigest()
