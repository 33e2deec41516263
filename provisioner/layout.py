"""Where things live on a mail host: the one definition both the renderer and the role use.

The renderer writes these paths and names into the configuration it renders; the role reads
them from the manifest (each host's "layout", see `host_layout`) instead of repeating them, so a
change here reaches dovecot.conf, master.cf and the role's users, directories and reloads at once.
Layer: below render (plain data, imports nothing of provisioner).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

VMAIL_USER = "vmail"  # Dovecot stores all Maildirs as this user and group; dovecot-lda runs as it
VMAIL_UID = 5000  # its uid and gid (dovecot.conf first_valid_uid/mail_uid)
VMAIL_HOME = "/var/vmail"  # the mail store
LDA_LOG = "/var/log/dovecot-lda.log"  # written by dovecot-lda as vmail, which cannot create files in /var/log
CERT_DIR = "/etc/ssl/provisioner"  # each host's certificate and key (and a smarthost CA)
# OpenDKIM's socket directory inside Postfix's queue directory (smtpd runs chrooted there).
OPENDKIM_SOCKET_DIR = "/var/spool/postfix/opendkim"

# A service runs on a host when the host's tree holds its main configuration file.
SERVICE_MARKERS = {"postfix": "/etc/postfix/main.cf", "dovecot": "/etc/dovecot/dovecot.conf", "opendkim": "/etc/opendkim.conf"}
# Which live paths a service reads: a change below one of them reloads that service.
RELOAD_ON = {
    "postfix": ("/etc/postfix/", CERT_DIR + "/"),
    "dovecot": ("/etc/dovecot/", CERT_DIR + "/"),
    "opendkim": ("/etc/opendkim.conf", "/etc/opendkim/", "/etc/default/opendkim"),
}


def host_layout(paths: Iterable[str]) -> dict[str, Any]:
    """The manifest's "layout" of one host, from the live paths of its tree: the services it runs
    (in SERVICE_MARKERS' order; the role starts them in reverse, Postfix last, after the milter
    and the IMAP server it hands mail to) and what the role creates for them."""
    present = set(paths)
    services = [name for name, marker in SERVICE_MARKERS.items() if marker in present]
    return {
        "services": services,
        # A changed certificate reloads Postfix and Dovecot, but only where they run.
        "reload_on": {name: list(RELOAD_ON[name]) for name in services},
        "vmail": {"user": VMAIL_USER, "uid": VMAIL_UID, "home": VMAIL_HOME},
        "lda_log": LDA_LOG,
        "opendkim_socket_dir": OPENDKIM_SOCKET_DIR,
    }
