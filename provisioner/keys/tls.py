"""Self-signed TLS certificates and their keys in the state directory, one per host.

Layout in STATE (see provisioner.keys.store):

    tls/<fqdn>/cert.pem   the certificate, 0644
    tls/<fqdn>/key.pem    its private key, PKCS#8 PEM, 0600; an ansible-vault file when a vault
                          password is given (like the DKIM keys), read back through KeyState

Made once per host for `tls.source: self-signed` and made again only when the certificate no
longer names the host or expires within RENEW_BEFORE. `build` calls ensure_tls beside
ensure_keys; render only reads what is here (provisioner.render.tls).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import STATE_DIR_MODE, KeyState
from provisioner.site.model import Site
from provisioner.site.types import TlsSource

TLS_DIR = "tls"
SELF_SIGNED_DAYS = 825  # the longest validity clients accepted for a long time (CA/B Forum, Apple)
RENEW_BEFORE = dt.timedelta(days=30)


def tls_files(state_dir: Path, fqdn: str) -> tuple[Path, Path]:
    """The certificate and key files of host `fqdn` in the state directory."""
    stored = state_dir / TLS_DIR / fqdn
    return stored / "cert.pem", stored / "key.pem"


def self_signed(fqdn: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """A new self-signed certificate for `fqdn` (RSA 2048, SHA-256, SAN dNSName) and its key, as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _usable(cert_file: Path, fqdn: str, now: dt.datetime) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return fqdn in names and cert.not_valid_after_utc - RENEW_BEFORE > now


def ensure_tls(site: Site, ks: KeyState, now: dt.datetime | None = None, made: list[str] | None = None) -> int:
    """Every host of a self-signed site gets a usable certificate and key in ks.state_dir.

    A new key is an ansible-vault file when ks has a vault password. Returns how many hosts got
    a new pair; the paths of files that did not exist before are appended to `made` (so
    keys_undone_on_failure deletes them when the build fails; a renewed pair stays).
    """
    if site.tls.source is not TlsSource.SELF_SIGNED:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    count = 0
    for _, host in sorted(site.hosts.items()):
        cert_file, key_file = tls_files(ks.state_dir, host.fqdn)
        if key_file.exists() and _usable(cert_file, host.fqdn, now):
            continue
        cert_pem, key_pem = self_signed(host.fqdn, now)
        new = [os.fspath(p) for p in (key_file, cert_file) if not p.exists()]
        atomic_write(key_file, ks.vault().encrypt(key_pem) if ks.vault_password is not None else key_pem, 0o600, STATE_DIR_MODE)
        atomic_write(cert_file, cert_pem, 0o644, STATE_DIR_MODE)
        if made is not None:
            made += new
        count += 1
    return count


def read_tls(ks: KeyState, fqdn: str) -> tuple[bytes, bytes]:
    """The certificate and the plaintext key of host `fqdn` (a vault-encrypted key is decrypted)."""
    cert_file, key_file = tls_files(ks.state_dir, fqdn)
    hint = "render makes it (provision render)"
    try:
        cert = cert_file.read_bytes()
    except OSError as exc:
        raise ProvisionError(f"cannot read TLS certificate {cert_file}: {exc.strerror or exc}; {hint}") from None
    return cert, ks.read_secret(key_file, "TLS key", hint)
