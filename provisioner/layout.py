"""Where things live on a mail host: the one definition both the renderer and the role use.

The renderer writes these paths and names into the configuration it renders; the role reads
them from the manifest (each host's "layout", see `host_layout`) instead of repeating them, so a
change here reaches dovecot.conf, master.cf and the role's users, directories and reloads at once.
Layer: below render (plain data, imports nothing of provisioner).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VMAIL_USER = "vmail"  # Dovecot stores all Maildirs as this user and group; dovecot-lda runs as it
VMAIL_UID = 5000  # its uid and gid (dovecot.conf first_valid_uid/mail_uid)
VMAIL_HOME = "/var/vmail"  # the mail store
LDA_LOG = "/var/log/dovecot-lda.log"  # written by dovecot-lda as vmail, which cannot create files in /var/log
CERT_DIR = "/etc/ssl/provisioner"  # each host's certificate and key (and a smarthost CA)
# tls.source acme (docs/certificates.md): what the services read, per certificate NAME (certbot's
# --cert-name), is ACME_LINK_DIR/NAME/{fullchain,privkey}.pem: a temporary self-signed pair the role
# makes until the first certificate is obtained, then symlinks into certbot's LETSENCRYPT_LIVE/NAME/
# that the deploy hook puts there. The path never changes, so it is never broken.
ACME_LINK_DIR = CERT_DIR + "/acme"
LETSENCRYPT_LIVE = "/etc/letsencrypt/live"
ACME_DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/provisioner"  # certbot runs it after each issuance
ACME_WEBROOT = "/var/www/provisioner/acme"  # certbot --webroot writes .well-known/acme-challenge/ here
WEB_ROOT = "/var/www/provisioner"  # the web side's files: mta-sts/<id>.txt, autoconfig/config-v1.1.xml
NGINX_CONF = "/etc/nginx/nginx.conf"  # the whole web server: nothing but what render/web.py declares
# OpenDKIM's socket directory inside Postfix's queue directory (smtpd runs chrooted there).
OPENDKIM_SOCKET_DIR = "/var/spool/postfix/opendkim"
# Postfix's private socket directory, where Dovecot binds its auth socket for smtpd (main.cf
# smtpd_sasl_path private/auth). Postfix 3.10's package (trixie) no longer creates it at install;
# the role makes it as Postfix's postfix-files declares it (owner mail_owner, mode 0700).
POSTFIX_PRIVATE_DIR = "/var/spool/postfix/private"

# A service runs on a host when the host's tree holds its main configuration file.
# rspamd (mx and backup-mx hosts, docs/inbound.md): render/rspamd.py's MARKER, a local.d file
# every judging host gets. The role starts the services in reverse: rspamd and OpenDKIM first,
# so Postfix's port-25 milter (milter_default_action = tempfail) answers when Postfix accepts mail.
SERVICE_MARKERS = {
    "postfix": "/etc/postfix/main.cf",
    "dovecot": "/etc/dovecot/dovecot.conf",
    "opendkim": "/etc/opendkim.conf",
    "rspamd": "/etc/rspamd/local.d/milter_headers.conf",
    "nginx": NGINX_CONF,
}
# Which live paths a service reads: a change below one of them reloads that service.
RELOAD_ON = {
    "postfix": ("/etc/postfix/", CERT_DIR + "/"),
    "dovecot": ("/etc/dovecot/", CERT_DIR + "/"),
    "opendkim": ("/etc/opendkim.conf", "/etc/opendkim/", "/etc/default/opendkim"),
    # Only local.d is rendered; rspamd rereads its whole configuration on SIGHUP (rspamd.service ExecReload).
    "rspamd": ("/etc/rspamd/local.d/",),
    # nginx rereads its configuration and reopens the certificates on SIGHUP (nginx.service ExecReload).
    "nginx": ("/etc/nginx/", WEB_ROOT + "/"),
}
# A change below these paths RESTARTS the service instead: OpenDKIM rereads its configuration on
# SIGUSR1 (reload) but keeps the socket it bound at start, and /etc/default/opendkim is only read
# by its unit's start (opendkim(8), Debian's opendkim.service).
RESTART_ON = {"opendkim": RELOAD_ON["opendkim"]}
# Postfix parameters a `postfix reload` does not apply: the master daemon binds the listening
# sockets only at start (postconf(5): inet_interfaces, inet_protocols "... requires 'postfix stop'
# and 'postfix start'"). A change of their value restarts Postfix.
RESTART_POSTCONF = ("inet_interfaces", "inet_protocols")
# The systemd unit that runs each service, per release. Debian 12 runs Postfix's master as the
# instance postfix@- (postfix.service is a oneshot umbrella whose start and reload do nothing by
# themselves); from Postfix 3.9.1-7 (Debian 13) postfix.service runs it and conflicts with postfix@-.
UNITS = {
    "debian-13": {"postfix": "postfix", "dovecot": "dovecot", "opendkim": "opendkim", "rspamd": "rspamd", "nginx": "nginx"},
    "debian-12": {"postfix": "postfix@-", "dovecot": "dovecot", "opendkim": "opendkim", "rspamd": "rspamd", "nginx": "nginx"},
}
# Services a host no longer runs once its tree lacks their marker, which the role stops and
# disables (their files stay: never delete what we did not write): OpenDKIM on an mx-only host,
# where rspamd judges and nothing is signed (render/opendkim.py).
RETIRED = ("opendkim",)
# The web side of tls.source acme (docs/certificates.md) on a host whose tree no longer has
# nginx.conf (the site left acme): nginx, and certbot's renewal timer, are stopped and disabled
# like RETIRED, their files stay. Only what is ours (the role's mailhost_services checks "ours"):
# an nginx.conf we rendered, a certbot whose every renewal configuration uses our webroot; a
# user's own nginx, or certbot renewing their own certificates (tls.source files), keeps running.
RETIRED_WEB: dict[str, dict[str, Any]] = {
    "nginx": {"ours": {"path": NGINX_CONF, "contains": "# Rendered by provision for site "}},
    "certbot": {"unit": "certbot.timer", "ours": {"path": "/etc/letsencrypt/renewal/*.conf", "contains": ACME_WEBROOT}},
}
# What a Debian release reports as ansible_distribution_major_version.
RELEASE_MAJOR = {"debian-13": "13", "debian-12": "12"}


def main_cf_values(text: str, names: Iterable[str]) -> dict[str, str | None]:
    """The values main.cf sets for `names` (the last assignment wins, as in Postfix; continuation
    lines start with whitespace, postconf(5)); None where main.cf leaves the default."""
    wanted = set(names)
    found: dict[str, str | None] = dict.fromkeys(sorted(wanted))
    current: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if current is not None:
                found[current] = f"{found[current]} {line.strip()}".strip()
            continue
        name, equals, value = line.partition("=")
        current = name.strip() if equals and name.strip() in wanted else None
        if current is not None:
            found[current] = value.strip()
    return found


def host_layout(paths: Iterable[str], release: str, main_cf: str = "", acme: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest's "layout" of one host, from its declared release (hosts.<name>.os), the
    live paths of its tree and its main.cf: the services it runs (in SERVICE_MARKERS' order; the
    role starts them in reverse, Postfix last, after the milter and the IMAP server it hands
    mail to), what reloads or restarts each, and what the role creates for them. `acme`: the
    host's certificates to obtain (provisioner.render.acme.layout_entry), or None."""
    present = set(paths)
    services = [name for name, marker in SERVICE_MARKERS.items() if marker in present]
    return {
        "os": release,
        "os_major": RELEASE_MAJOR[release],
        "services": services,
        "units": {name: UNITS[release][name] for name in services},
        # A changed certificate reloads Postfix and Dovecot, but only where they run.
        "reload_on": {name: list(RELOAD_ON[name]) for name in services},
        "restart_on": {name: list(RESTART_ON[name]) for name in services if name in RESTART_ON},
        # The values the build gives the parameters whose change restarts Postfix (None: default).
        "restart_postconf": main_cf_values(main_cf, RESTART_POSTCONF) if "postfix" in services else {},
        "vmail": {"user": VMAIL_USER, "uid": VMAIL_UID, "home": VMAIL_HOME},
        "lda_log": LDA_LOG,
        "opendkim_socket_dir": OPENDKIM_SOCKET_DIR,
        "postfix_private_dir": POSTFIX_PRIVATE_DIR,
        "retired": {name: UNITS[release][name] for name in RETIRED if name not in services and "rspamd" in services},
        "retired_web": retired_web(release, services, acme),
        # Sieve scripts of the tree, which the role compiles with sievec after a change: dovecot-lda
        # runs as vmail and cannot write the .svbin beside a script under /etc (Pigeonhole).
        "sieve": sorted(p for p in present if p.startswith("/etc/dovecot/") and p.endswith(".sieve")),
        **({"acme": dict(acme)} if acme else {}),  # only where certificates are obtained: other manifests stay as they were
    }


def retired_web(release: str, services: Iterable[str], acme: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """RETIRED_WEB's units this host stops when ours: nginx where its tree has no nginx.conf, the
    certbot timer where no certificate is obtained (no acme entry)."""
    running = set(services)
    out: dict[str, dict[str, Any]] = {}
    if "nginx" not in running:
        out["nginx"] = {"unit": UNITS[release]["nginx"], "ours": dict(RETIRED_WEB["nginx"]["ours"])}
    if not acme:
        out["certbot"] = {"unit": RETIRED_WEB["certbot"]["unit"], "ours": dict(RETIRED_WEB["certbot"]["ours"])}
    return out
