"""Dovecot per host release: IMAPS/POP3S for the mailbox host, SASL for Postfix submission.

Debian 12 ships Dovecot 2.3.19, Debian 13 ships 2.4.1, and 2.4 refuses 2.3's configuration
(DC-01 in docs/rules.md): a host's `os` picks the template and the users file's quota field.
docs/dovecot.md has the mapping of the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.layout import LDA_LOG, VMAIL_HOME, VMAIL_UID, VMAIL_USER  # the role reads them from the manifest
from provisioner.render.rspamd import SPAM_HEADER
from provisioner.render.tls import TlsPaths
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site
from provisioner.site.types import OsRelease, Service
from provisioner.templating import render_template

USERS_FILE = "/etc/dovecot/users"
# Run before each user's script by dovecot-lda; the role compiles it with sievec (a .svbin beside it).
JUNK_SIEVE = "/etc/dovecot/sieve/junk.sieve"


@dataclass(frozen=True)
class DovecotRelease:
    template: str
    quota_field: str  # the users file's userdb extra field for a mailbox's quota, {size} filled in


RELEASES = {
    OsRelease.DEBIAN_12: DovecotRelease("dovecot.conf.j2", "userdb_quota_rule=*:storage={size}"),
    # 2.4: quota rules are gone; the size is a setting the userdb overrides per user.
    OsRelease.DEBIAN_13: DovecotRelease("dovecot-2.4.conf.j2", "userdb_quota_storage_size={size}"),
}
# 2.4's first lines: the setting names and defaults this template is written for (2.4.1, what
# Debian 13 ships: with 2.4.0, doveconf -n notes "4 default setting changes since version 2.4.0"),
# and the oldest Dovecot that must read the files it writes (any 2.4; 2.3 is not promised).
CONFIG_VERSION = "2.4.1"
STORAGE_VERSION = "2.4.0"


@dataclass(frozen=True)
class PasswdEntry:
    user: str
    password_hash: str
    quota: str | None


def passwd_file(entries: list[PasswdEntry], release: DovecotRelease = RELEASES[OsRelease.DEBIAN_12]) -> str:
    """passwd-file(5) lines: user:password:uid:gid:gecos:home:shell:extra_fields."""
    lines = []
    for e in sorted(entries, key=lambda e: e.user):
        extra = release.quota_field.format(size=e.quota) if e.quota else ""
        lines.append(f"{e.user}:{e.password_hash}::::::{extra}\n")
    return "".join(lines)


def add_dovecot(tree: HostTree, site: Site, name: str, host: Host, tls: TlsPaths, entries: list[PasswdEntry]) -> bool:
    """Render Dovecot for a mailbox host (full) or a submission host (auth only). False if none."""
    stores = host.stores_mailboxes
    if not (stores or host.has(Service.SUBMISSION)):
        return False
    protocols = [p for p in ("imap", "pop3") if host.has(Service(p))]  # delivery: dovecot-lda, not lmtp
    hosted = site.hosted_domains
    release = RELEASES[host.os]
    tree.add(
        "etc/dovecot/dovecot.conf",
        render_template(
            release.template,
            site=site.name,
            host=name,
            os=host.os.value,
            config_version=CONFIG_VERSION,
            storage_version=STORAGE_VERSION,
            # 2.3 needs "none" for no protocols; 2.4 has none by default and no such word.
            protocols=" ".join(protocols) if protocols else ("" if host.os is OsRelease.DEBIAN_13 else "none"),
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
            junk_sieve=JUNK_SIEVE,
            postmaster=f"postmaster@{hosted[0]}" if hosted else f"postmaster@{host.fqdn}",
        ),
    )
    if stores:
        tree.add(JUNK_SIEVE[1:], render_template("sieve/junk.sieve.j2", site=site.name, spam_header=SPAM_HEADER))
    # Hashes only (DC-07), but never world-readable: a stolen hash can be guessed offline.
    tree.add(USERS_FILE[1:], passwd_file(entries, release), 0o640, "root", "dovecot", secret=True)
    return True
