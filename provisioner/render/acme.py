"""tls.source acme: which certificates each host obtains, where its services read them, and the
certbot deploy hook that puts a new one in place and reloads exactly the services using it.

Certificates are obtained and renewed on the host by Debian's certbot (docs/certificates.md):
the role runs `certbot certonly --webroot` once per certificate below, Debian's certbot.timer
renews, and certbot runs the deploy hook rendered here after every issuance. Everything is a
pure function of the site: the names, the certificate names and the hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.layout import ACME_DEPLOY_HOOK, ACME_LINK_DIR, ACME_WEBROOT, LETSENCRYPT_LIVE, SERVICE_MARKERS, UNITS
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site

# Let's Encrypt's limit of names per certificate (letsencrypt.org/docs/rate-limits); other CAs'
# are not lower in practice.
MAX_NAMES = 100


@dataclass(frozen=True)
class Certificate:
    name: str  # certbot's --cert-name: the host's fqdn, then <fqdn>-2, <fqdn>-3, ...
    names: tuple[str, ...]  # its dNSNames, the host's fqdn first in the first one

    @property
    def fullchain(self) -> str:
        """The stable path services read: a self-signed placeholder, then a link into certbot's live/."""
        return f"{ACME_LINK_DIR}/{self.name}/fullchain.pem"

    @property
    def privkey(self) -> str:
        return f"{ACME_LINK_DIR}/{self.name}/privkey.pem"


def host_certificates(host: Host, web: list[tuple[str, tuple[str, ...]]]) -> list[Certificate]:
    """The host's fqdn, then each domain's web names (dns.records.web_names, for the web host),
    in domain order, filling certificates of at most MAX_NAMES names; a domain's names are never
    split over two certificates, so each HTTPS server block has one certificate."""
    groups: list[list[str]] = [[host.fqdn]]
    for _, names in web:
        if len(groups[-1]) + len(names) > MAX_NAMES:
            groups.append([])
        groups[-1].extend(names)
    return [Certificate(host.fqdn if index == 0 else f"{host.fqdn}-{index + 1}", tuple(names)) for index, names in enumerate(groups)]


def users(tree: HostTree, certificates: list[Certificate], web: bool) -> dict[str, list[str]]:
    """Certificate name -> the services of this host that read it (in SERVICE_MARKERS' order):
    Postfix and Dovecot the first (the host's fqdn), nginx every one on the web host."""
    present = {"/" + path for path in tree.files}
    running = [name for name, marker in SERVICE_MARKERS.items() if marker in present]
    out = {}
    for index, cert in enumerate(certificates):
        mail = [s for s in running if s in ("postfix", "dovecot")] if index == 0 else []
        out[cert.name] = mail + (["nginx"] if web and "nginx" in running else [])
    return out


def deploy_hook(site: Site, host: Host, used_by: dict[str, list[str]]) -> str:
    """certbot's deploy hook (run after each issuance with RENEWED_LINEAGE set): links the stable
    paths to the new certificate's live/ files, then reloads exactly the services that read it
    (the "renewed but still serving the old certificate" case cannot happen)."""
    units = UNITS[host.os.value]
    cases = []
    for name, services in used_by.items():
        reload = " ".join(f"{s}:{units[s]}" for s in services)
        cases.append(f'  "{LETSENCRYPT_LIVE}/{name}") name="{name}"; services="{reload}" ;;\n')
    return (
        "#!/bin/sh\n"
        f"# Rendered by provision for site {site.name}, host {host.fqdn}: do not edit (docs/certificates.md).\n"
        "# certbot runs it after obtaining or renewing a certificate; other lineages are left alone.\n"
        "set -eu\n"
        'case "${RENEWED_LINEAGE:-}" in\n'
        f"{''.join(cases)}"
        "  *) exit 0 ;;\n"
        "esac\n"
        f'dir="{ACME_LINK_DIR}/$name"\n'
        'mkdir -p "$dir"\n'
        "# Each link is made beside its target path and renamed over it: never a moment without a file.\n"
        "for file in fullchain privkey; do\n"
        '  rm -f "$dir/.$file.new"\n'
        '  ln -s "$RENEWED_LINEAGE/$file.pem" "$dir/.$file.new"\n'
        '  mv -Tf "$dir/.$file.new" "$dir/$file.pem"\n'
        "done\n"
        "status=0\n"
        "for pair in $services; do\n"
        '  service="${pair%%:*}"; unit="${pair#*:}"\n'
        "  if [ -d /run/systemd/system ]; then\n"
        '    systemctl reload "$unit.service" || status=1\n'
        "  else\n"
        '    service "$service" reload || status=1\n'
        "  fi\n"
        "done\n"
        'exit "$status"\n'
    )


def add_acme(tree: HostTree, site: Site, host: Host, certificates: list[Certificate], web: bool) -> dict[str, Any]:
    """Ship the deploy hook; return the manifest layout's "acme" entry, what the role obtains."""
    used_by = users(tree, certificates, web)
    tree.add(ACME_DEPLOY_HOOK[1:], deploy_hook(site, host, used_by), 0o755)
    acme = site.tls.acme
    assert acme is not None  # validation requires tls.acme with source acme
    return {
        "email": acme.email,
        "directory": acme.directory,
        "webroot": ACME_WEBROOT,
        "deploy_hook": ACME_DEPLOY_HOOK,
        "live": LETSENCRYPT_LIVE,
        "certificates": [
            {"name": c.name, "names": list(c.names), "fullchain": c.fullchain, "privkey": c.privkey, "services": used_by[c.name]} for c in certificates
        ],
    }
