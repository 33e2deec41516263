"""`provision check` as one call: the site file and options in, one Report out (DNS, and with
`tls` the mail ports). The CLI shows the report; everything it needs to know is in it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from provisioner.check.findings import Report
from provisioner.check.run import CountProgress, run_check
from provisioner.errors import ProvisionError
from provisioner.keys.store import load_state, state_dir_for
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.model import Site
from provisioner.site.validate import load_site

CERT_FILE_LIMIT = 1 << 20  # a certificate chain is a few KiB; more is not one


def nameservers(values: Sequence[str], option: str) -> list[Nameserver]:
    """IP[:PORT] strings from the command line, or a ProvisionError naming the option."""
    try:
        return [Nameserver.parse(v) for v in values]
    except ValueError as exc:
        raise ProvisionError(f"{option}: {exc}") from None


def _read_limited(path: Path, option: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(CERT_FILE_LIMIT + 1)
    except OSError as exc:
        raise ProvisionError(f"{option} {path}: {exc.strerror or exc}") from None
    if len(data) > CERT_FILE_LIMIT:
        raise ProvisionError(f"{option} {path}: larger than {CERT_FILE_LIMIT >> 20} MiB, not a certificate file")
    return data


def trust_file(path: Path | None) -> str | None:
    """--ca FILE: PEM certificate(s) to verify against instead of the system trust store."""
    if path is None:
        return None
    import ssl

    _read_limited(path, "--ca")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        raise ProvisionError(f"--ca {path}: no PEM certificate in it ({exc})") from None
    return str(path)


def host_certificates(values: Sequence[str], site: Site) -> dict[str, bytes]:
    """--host-cert HOST=FILE: the certificate newest on each host (the leaf of a PEM chain, or DER),
    keyed by the host's FQDN; HOST is the site's name for the host or its FQDN."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    out: dict[str, bytes] = {}
    for value in values:
        host_name, eq, file_name = value.partition("=")
        if not eq or not host_name or not file_name:
            raise ProvisionError(f"--host-cert {value!r}: expected HOST=FILE")
        host = site.hosts.get(host_name) or next((h for h in site.hosts.values() if h.fqdn == host_name.lower().rstrip(".")), None)
        if host is None:
            raise ProvisionError(f"--host-cert {host_name!r}: no such host in the site (hosts: {', '.join(sorted(site.hosts))})")
        data = _read_limited(Path(file_name), "--host-cert")
        try:
            cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
        except ValueError:
            raise ProvisionError(f"--host-cert {file_name}: not a PEM or DER certificate") from None
        out[host.fqdn] = cert.public_bytes(Encoding.DER)
    return out


def check_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    nameserver: Sequence[str] = (),
    dnsbl_nameserver: Sequence[str] = (),
    timeout: float = 2.0,
    concurrency: int = 32,
    tls: bool = False,
    tls_timeout: float = 5.0,
    ca: Path | None = None,
    host_cert: Sequence[str] = (),
    progress: CountProgress | None = None,
    asking: Callable[[str], None] | None = None,
) -> Report:
    """Check what the world sees of the site. `asking(description)` is told, before the first
    question, which resolver is asked (a dead one is waited for; the caller may show it)."""
    servers = nameservers(nameserver, "--nameserver")
    dnsbl_servers = nameservers(dnsbl_nameserver, "--dnsbl-nameserver")
    if (ca is not None or host_cert) and not tls:
        raise ProvisionError("--ca and --host-cert are for --tls: add --tls")
    loaded = load_site(site_path)
    trust = trust_file(ca)
    on_disk = host_certificates(host_cert, loaded.site)
    keys = load_state(state_dir_for(loaded.path, state), vault_password)
    resolver = DnsResolver(servers or None, timeout)
    dnsbl_resolver = DnsResolver(dnsbl_servers, timeout) if dnsbl_servers else None
    if asking is not None:
        asking(resolver.describe())
    report = run_check(loaded.site, keys, resolver, dnsbl_resolver=dnsbl_resolver, concurrency=concurrency, timeout=timeout, progress=progress)
    if tls:
        from provisioner.check.tls import check_tls, with_findings

        report = with_findings(report, check_tls(loaded.site, timeout=tls_timeout, ca=trust, on_disk=on_disk, resolver=resolver))
    return report
