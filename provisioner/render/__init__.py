"""Render every host's configuration tree from a validated site and the state directory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic_core import PydanticCustomError

from provisioner.dns.records import web_names
from provisioner.errors import ProvisionError
from provisioner.keys.store import KeyState, require_keys
from provisioner.render import acme, dovecot, opendkim, postfix, rspamd, tls, web
from provisioner.render.tree import HostTree
from provisioner.secrets import resolve
from provisioner.site.types import SecretRef, TlsSource, check_password_hash
from provisioner.site.validate import Issue, LoadedSite, raise_issues


@dataclass(frozen=True)
class Secrets:
    smarthost_password: str | None
    passwd: list[dovecot.PasswdEntry]
    smarthost_ca: bytes | None = None  # not secret, but read from beside the site file like one


def resolve_secrets(loaded: LoadedSite, env: Mapping[str, str]) -> Secrets:
    """Every secret reference of the site, or every missing one reported at once."""
    site = loaded.site
    issues: list[Issue] = []
    smarthost_password = smarthost_ca = None
    if site.relay.smarthost:
        smarthost_password, issue = resolve(site.relay.smarthost.password, loaded.base_dir, env, ("relay", "smarthost", "password"))
        issues += [issue] if issue else []
        if site.relay.smarthost.tls_ca:
            smarthost_ca, issue = postfix.read_smarthost_ca(site.relay.smarthost.tls_ca, loaded.base_dir)
            issues += [issue] if issue else []
    entries: list[dovecot.PasswdEntry] = []
    for domain_name in site.hosted_domains:
        for local, mailbox in site.domains[domain_name].mailboxes.items():
            where = ("domains", domain_name, "mailboxes", local, "password")
            password = mailbox.password
            if isinstance(password, SecretRef):
                ref = password
                value, issue = resolve(ref, loaded.base_dir, env, where)
                if issue:
                    issues.append(issue)
                    continue
                assert value is not None
                try:
                    password = check_password_hash(value)
                except PydanticCustomError as exc:  # check_password_hash's refusal carries our message
                    issues.append(Issue(where, f"{ref.describe()}: {exc}", "it must hold a bare hash from `provision passwd --raw`"))
                    continue
            entries.append(dovecot.PasswdEntry(f"{local}@{domain_name}", password, mailbox.quota))
    raise_issues(loaded, issues)
    return Secrets(smarthost_password, entries, smarthost_ca)


def render_site(loaded: LoadedSite, keys: KeyState, state_dir: Path, env: Mapping[str, str]) -> dict[str, HostTree]:
    site = loaded.site
    missing = require_keys(site, keys)
    if missing:
        raise ProvisionError(
            f"no DKIM keys for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} in {state_dir}; run `provision keys {loaded.path}`"
        )
    secrets = resolve_secrets(loaded, env)
    trees: dict[str, HostTree] = {}
    served = web_names(site)
    for name, host in sorted(site.hosts.items()):
        tree = HostTree(name)
        paths = tls.add_tls(tree, site, host, keys)
        milter = opendkim.add_opendkim(tree, site, host, keys)
        inbound = rspamd.add_rspamd(tree, site, host)
        postfix.render_postfix(
            postfix.PostfixInput(site, name, host, paths, milter, secrets.smarthost_password, secrets.smarthost_ca, inbound), tree
        )
        dovecot.add_dovecot(tree, site, name, host, paths, secrets.passwd)
        if site.tls.source is TlsSource.ACME:
            serves = site.serves_web and name == site.web_hosts[0][0]
            certificates = acme.host_certificates(host, served if serves else [])
            web.add_web(tree, site, host, certificates, serves)
            tree.acme = acme.add_acme(tree, site, host, certificates, serves)
        trees[name] = tree
    return trees
