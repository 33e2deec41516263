"""TLS certificate and key for each host: the component the Postfix and Dovecot parts read paths from.

Self-signed pairs are made in the state directory by provisioner.keys.tls (build.py, beside the
DKIM keys); here they are only read and shipped. With acme nothing is shipped: the services read
stable paths on the host (provisioner.render.acme)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.keys.store import KeyState
from provisioner.keys.tls import read_tls
from provisioner.layout import CERT_DIR as LIVE_CERT_DIR
from provisioner.render.acme import host_certificates
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site
from provisioner.site.types import TlsSource

CERT_DIR = LIVE_CERT_DIR.lstrip("/")  # relative to the host tree


@dataclass(frozen=True)
class TlsPaths:
    cert: str  # absolute path on the host: certificate with its chain
    key: str  # absolute path on the host: private key


def add_tls(tree: HostTree, site: Site, host: Host, keys: KeyState) -> TlsPaths:
    """Ship the host's certificate and key (self-signed: from state/tls, see provisioner.keys.tls)."""
    source = site.tls.source
    if source is TlsSource.FILES:
        assert site.tls.files is not None
        return TlsPaths(cert=site.tls.files.cert, key=site.tls.files.key)
    if source is TlsSource.ACME:
        # Stable paths: a placeholder until certbot's first certificate, then links to it (render.acme).
        first = host_certificates(host, [])[0]
        return TlsPaths(cert=first.fullchain, key=first.privkey)
    cert_pem, key_pem = read_tls(keys, host.fqdn)
    paths = TlsPaths(cert=f"/{CERT_DIR}/{host.fqdn}.crt", key=f"/{CERT_DIR}/{host.fqdn}.key")
    tree.add(paths.cert[1:], cert_pem, 0o644)
    tree.add(paths.key[1:], key_pem, 0o600, secret=True)
    return paths
