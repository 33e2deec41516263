"""`check --tls`: every TLS service of a host serves the same certificate, and the newest one.

The complaint this catches ("renewed, but Postfix/Dovecot still serve the old certificate"): a
renewal writes a new certificate to disk, and a service that was not reloaded keeps the one it
read at start. Seen from outside, that host's services disagree; the service whose certificate has
the older notBefore is the stale one. Without SSH, check cannot read the disk itself, so the newest
certificate is

* the file the user (or apply, which fetches it) gives as `--host-cert HOST=FILE`: every service
  must serve exactly that one; or else
* the newest (by notBefore, then serial) that any of the host's services serves.

Certificates are compared by serial and SubjectPublicKeyInfo (a renewal that reuses the key keeps
the SPKI and changes the serial). Only the connections that sent the host's FQDN as SNI take part:
the web host's mta-sts/autoconfig names may legitimately have a certificate of their own (one per
domain when the names exceed the CA's SAN limit). Pure: probes in, findings out.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.check.findings import Finding, Severity
from provisioner.check.tls import CATEGORY, CertInfo, Probe, cert_info
from provisioner.site.model import Host

# Which program serves each endpoint's service: what to reload (the deploy hook's list).
PROGRAM = {"smtp": "postfix", "submission": "postfix", "submissions": "postfix", "imaps": "dovecot", "pop3s": "dovecot", "https": "nginx"}


def _served(probes: Sequence[Probe]) -> list[tuple[Probe, CertInfo]]:
    out: list[tuple[Probe, CertInfo]] = []
    for p in probes:
        if p.name or p.session is None or p.session.cert is None:
            continue
        try:
            out.append((p, cert_info(p.session.cert)))
        except ValueError:  # not a certificate cryptography can read: the endpoint's own judges say so
            continue
    return out


def _newest(infos: Sequence[CertInfo]) -> CertInfo:
    return max(infos, key=lambda i: (i.not_before, i.serial, i.spki))


def judge_same_certificate(host: Host, probes: Sequence[Probe], on_disk: CertInfo | None = None) -> list[Finding]:
    """One finding per stale service (error), or one passing finding for the host; nothing when no
    service showed a certificate. `on_disk`: the newest certificate on the host, when known."""
    served = _served(probes)
    if not served:
        return []
    newest = on_disk or _newest([info for _, info in served])
    where = "the certificate on disk (--host-cert)" if on_disk else "the newest certificate the host serves"
    expected = f"{where}: {newest.short()}"
    out: list[Finding] = []
    for p, info in sorted(served, key=lambda item: item[0].endpoint.port):
        if info.identity == newest.identity:
            continue
        service, program = p.endpoint.service, PROGRAM.get(p.endpoint.service, p.endpoint.service)
        if info.not_before > newest.not_before:
            seen = f"{service} serves a newer certificate than the one on disk: {info.short()}"
            advice = "--host-cert must name the certificate the services read (the live one after renewal)"
        else:
            age = "an older" if info.not_before < newest.not_before else "another"
            seen = f"{service} serves {age} certificate: {info.short()}"
            advice = f"reload {program} (systemctl reload {program}): it still serves the certificate it read at start"
        out.append(Finding("tls.stale-certificate", host.fqdn, CATEGORY, Severity.ERROR, f"{host.fqdn}:{p.endpoint.port}", expected, seen, advice))
    if not out:
        services = ", ".join(f"{p.endpoint.service} {p.endpoint.port}" for p, _ in sorted(served, key=lambda item: item[0].endpoint.port))
        out.append(
            Finding(
                "tls.same-certificate",
                host.fqdn,
                CATEGORY,
                Severity.PASS,
                host.fqdn,
                f"every TLS service serves {where}",
                f"{services}: {newest.short()}",
                "",
            )
        )
    return out
