"""Dovecot 2.3 (Debian 12): IMAPS/POP3S for the mailbox host, SASL for Postfix submission.

Dovecot 2.4 renamed many settings (DC-01 in docs/rules.md); Debian 12 ships 2.3.19, which
is what this writes. docs/dovecot.md says what changes for 2.4.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.render.postfix import VMAIL_UID, VMAIL_USER
from provisioner.render.tls import TlsPaths
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site
from provisioner.site.types import Service
from provisioner.templating import render_template

VMAIL_HOME = "/var/vmail"
USERS_FILE = "/etc/dovecot/users"
LDA_LOG = "/var/log/dovecot-lda.log"  # written by dovecot-lda as vmail; roles/mailhost creates it


@dataclass(frozen=True)
class PasswdEntry:
    user: str
    password_hash: str
    quota: str | None


def passwd_file(entries: list[PasswdEntry]) -> str:
    """passwd-file(5) lines: user:password:uid:gid:gecos:home:shell:extra_fields."""
    lines = []
    for e in sorted(entries, key=lambda e: e.user):
        extra = f"userdb_quota_rule=*:storage={e.quota}" if e.quota else ""
        lines.append(f"{e.user}:{e.password_hash}::::::{extra}\n")
    return "".join(lines)


def add_dovecot(tree: HostTree, site: Site, name: str, host: Host, tls: TlsPaths, entries: list[PasswdEntry]) -> bool:
    """Render Dovecot for a mailbox host (full) or a submission host (auth only). False if none."""
    stores = host.stores_mailboxes
    if not (stores or host.has(Service.SUBMISSION)):
        return False
    protocols = [p for p in ("imap", "pop3") if host.has(Service(p))]  # delivery: dovecot-lda, not lmtp
    hosted = site.hosted_domains
    tree.add(
        "etc/dovecot/dovecot.conf",
        render_template(
            "dovecot.conf.j2",
            site=site.name,
            host=name,
            protocols=" ".join(protocols) if protocols else "none",
            listen="*, ::" if host.ipv6 else "*",
            tls=tls,
            stores=stores,
            imap=host.has(Service.IMAP),
            pop3=host.has(Service.POP3),
            vmail_uid=VMAIL_UID,
            vmail_user=VMAIL_USER,
            lda_log=LDA_LOG,
            vmail_home=VMAIL_HOME,
            users_file=USERS_FILE,
            postmaster=f"postmaster@{hosted[0]}" if hosted else f"postmaster@{host.fqdn}",
        ),
    )
    # Hashes only (DC-07), but never world-readable: a stolen hash can be guessed offline.
    tree.add(USERS_FILE[1:], passwd_file(entries), 0o640, "root", "dovecot", secret=True)
    return True
