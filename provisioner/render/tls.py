"""TLS certificate and key for each host: the component the Postfix and Dovecot parts read paths from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import STATE_DIR_MODE
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site
from provisioner.site.types import TlsSource

CERT_DIR = "etc/ssl/provisioner"
SELF_SIGNED_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsPaths:
    cert: str  # absolute path on the host: certificate with its chain
    key: str  # absolute path on the host: private key


def self_signed(fqdn: str, now: dt.datetime) -> tuple[bytes, bytes]:
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
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return fqdn in names and cert.not_valid_after_utc - RENEW_BEFORE > now


def add_tls(tree: HostTree, site: Site, host: Host, state_dir: Path, now: dt.datetime | None = None) -> TlsPaths:
    """Ship the host's certificate and key (self-signed: kept in state/tls, made once)."""
    source = site.tls.source
    if source is TlsSource.FILES:
        assert site.tls.files is not None
        return TlsPaths(cert=site.tls.files.cert, key=site.tls.files.key)
    if source is TlsSource.ACME:
        raise ProvisionError("tls.source: acme is not supported yet; use self-signed, or files with certificates you obtain yourself")
    now = now or dt.datetime.now(dt.UTC)
    stored = state_dir / "tls" / host.fqdn
    cert_file, key_file = stored / "cert.pem", stored / "key.pem"
    if not (key_file.exists() and _usable(cert_file, host.fqdn, now)):
        cert_pem, key_pem = self_signed(host.fqdn, now)
        atomic_write(key_file, key_pem, 0o600, STATE_DIR_MODE)
        atomic_write(cert_file, cert_pem, 0o644, STATE_DIR_MODE)
    paths = TlsPaths(cert=f"/{CERT_DIR}/{host.fqdn}.crt", key=f"/{CERT_DIR}/{host.fqdn}.key")
    tree.add(paths.cert[1:], cert_file.read_bytes(), 0o644)
    tree.add(paths.key[1:], key_file.read_bytes(), 0o600, secret=True)
    return paths
