"""From a file to a trusted Site, or every problem of the file with its line and column."""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, PlainValidator, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from provisioner.errors import Problem, SiteInvalid
from provisioner.site.loader import PathKey, dotted, parse, read_text, scan, spellings
from provisioner.site.model import MANUAL, Domain, Site
from provisioner.site.types import SecretRef, Service, to_a_label


@dataclass(frozen=True)
class Issue:
    """A problem before we know where it is in the file."""

    path: PathKey
    message: str
    hint: str = ""
    at_key: bool = False


@dataclass(frozen=True)
class LoadedSite:
    site: Site
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_site(path: Path | str) -> LoadedSite:
    """Read, parse and validate a site file. Raises SiteInvalid listing every problem."""
    path = Path(path)
    name = str(path)
    text = read_text(path)
    data = parse(text, name)
    if data is None:
        raise SiteInvalid([Problem(name, 1, 1, "", "the file is empty", "start from examples/all-in-one/site.yaml")])
    if not isinstance(data, dict):
        raise SiteInvalid([Problem(name, 1, 1, "", "the top level must be a mapping of keys (version, name, hosts, ...)", "")])
    site, issues = validate_data(data)
    if issues:
        raise SiteInvalid(locate(name, text, issues))
    assert site is not None
    return LoadedSite(site=site, path=path)


# A hostile file can hold a million wrong values; the first thousand problems say enough.
MAX_PROBLEMS = 1000


def locate(name: str, text: str, issues: list[Issue]) -> list[Problem]:
    """Turn issues into problems with line and column (reads the file's events once more)."""
    shown = issues[:MAX_PROBLEMS]
    candidates = [spellings(issue.path) for issue in shown]
    smap = scan(text, name, [path for options in candidates for path in options]).smap
    problems = []
    for issue, options in zip(shown, candidates, strict=True):
        path = next((option for option in options if option in smap.values), options[0])
        mark = smap.locate(path, at_key=issue.at_key)
        problems.append(Problem(name, mark.line, mark.column, dotted(issue.path), issue.message, issue.hint))
    if len(issues) > len(shown):
        more = len(issues) - len(shown)
        problems.append(Problem(name, 1, 1, "", f"{more} more problems not shown", f"fix the first {len(shown)} and validate again"))
    return problems


def raise_issues(loaded: LoadedSite, issues: list[Issue]) -> None:
    """For problems found after validation (secrets at render time): same format, same positions."""
    if issues:
        raise SiteInvalid(locate(str(loaded.path), read_text(loaded.path), issues))


def validate_data(data: dict[str, Any]) -> tuple[Site | None, list[Issue]]:
    """Validate parsed data. Returns the site (when valid) and every issue found."""
    folded = _folded_duplicates(data)
    errors: list[Any] = []
    if _nodes(data, SLICE_NODES * 10) > SLICE_NODES * 10:
        data = _in_pieces(Site, data, (), errors)
    site = None
    if len(errors) < MAX_PROBLEMS:
        try:
            site = Site.model_validate(data)
        except ValidationError as exc:
            errors.extend(exc.errors(include_url=False))
    if errors or site is None:
        item_paths = {tuple(e["loc"][:-1]) for e in errors if e["loc"] and isinstance(e["loc"][-1], int)}
        # A list whose items failed also fails min_length; the item errors say it better.
        errors = [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in item_paths)]
        issues = [_from_pydantic(err) for err in errors[:MAX_PROBLEMS]]
        if len(errors) < MAX_PROBLEMS:
            issues.extend(_partial_domain_checks(data))
        else:
            issues.append(Issue((), f"{len(errors) - MAX_PROBLEMS} or more further problems", "fix these first"))
        return None, _dedupe(folded + issues)
    issues = folded + check_site(site)
    return (None if issues else site), _dedupe(issues)


# ---------------------------------------------------------------------------- big documents

# Pydantic keeps every error of one call in memory (about 1.7 kB each with .errors()): a million
# wrong values would take gigabytes. A big document is therefore validated collection by
# collection in pieces of about SLICE_NODES values, and stops after MAX_PROBLEMS errors.
SLICE_NODES = 2000


def _nodes(value: Any, limit: int) -> int:
    """Values in `value` (keys and items included), counting no further than `limit`."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _shape(annotation: Any) -> tuple[str, Any]:
    """('model', cls), ('dict', (K, V)), ('tuple', T) or ('leaf', None) for a field's type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            base, *metadata = typing.get_args(annotation)
            if any(isinstance(m, PlainValidator) for m in metadata):
                return "leaf", None  # validated whole by our own function
            annotation = base
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return "leaf", None
            annotation = options[0]
        elif origin is dict:
            return "dict", typing.get_args(annotation)
        elif origin is tuple:
            return "tuple", typing.get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return "model", annotation
        else:
            return "leaf", None


def _in_pieces(annotation: Any, value: Any, loc: PathKey, errors: list[Any]) -> Any:
    """`value` with each big collection replaced by its valid items, validated in pieces.

    Errors of the pieces go to `errors` with their full location; the caller validates the
    (now small) rest as usual.
    """
    kind, args = _shape(annotation)
    if len(errors) >= MAX_PROBLEMS or _nodes(value, SLICE_NODES) <= SLICE_NODES:
        return value
    if kind == "model" and isinstance(value, dict):
        fields = args.model_fields
        unknown = set([key for key in value if key not in fields][:MAX_PROBLEMS])  # junk keys: a few say enough
        return {
            key: _in_pieces(fields[key].annotation, child, (*loc, key), errors) if key in fields else child
            for key, child in value.items()
            if key in fields or key in unknown
        }
    if kind == "dict" and isinstance(value, dict):
        entries = [(key, _in_pieces(args[1], child, (*loc, key), errors)) for key, child in value.items()]
        adapter = _adapter(dict[args[0], args[1]])  # type: ignore[valid-type]
        kept: dict[Any, Any] = {}
        for _, piece in _slices(entries):
            try:
                kept.update(adapter.validate_python(dict(piece)))
            except ValidationError as exc:
                errors.extend({**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False))
            if len(errors) >= MAX_PROBLEMS:
                break
        return kept
    if kind == "tuple" and isinstance(value, list):
        items = [_in_pieces(args, child, (*loc, index), errors) for index, child in enumerate(value)]
        adapter = _adapter(tuple[args, ...])  # type: ignore[valid-type]
        valid: list[Any] = []
        for start, piece in _slices(items):
            try:
                valid.extend(adapter.validate_python(piece))
            except ValidationError as exc:
                errors.extend({**e, "loc": (*loc, start + e["loc"][0], *e["loc"][1:])} for e in exc.errors(include_url=False))
            if len(errors) >= MAX_PROBLEMS:
                break
        return valid
    return value


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _slices(items: list[Any]) -> Any:
    """(index of the first item, items) in runs of about SLICE_NODES values."""
    start, piece, size = 0, [], 0
    for index, item in enumerate(items):
        piece.append(item)
        size += _nodes(item, SLICE_NODES)
        if size >= SLICE_NODES:
            yield start, piece
            start, piece, size = index + 1, [], 0
    if piece:
        yield start, piece


def _folded_duplicates(data: dict[str, Any]) -> list[Issue]:
    """Keys that differ only in case or IDN spelling would silently merge: refuse them."""
    issues: list[Issue] = []

    def scan(mapping: Any, where: PathKey, fold: Any) -> None:
        if not isinstance(mapping, dict):
            return
        seen: dict[str, str] = {}
        for key in mapping:
            try:
                norm = fold(key)
            except PydanticCustomError:  # invalid keys are reported by the model
                continue
            if norm in seen:
                issues.append(Issue((*where, key), f"{key!r} is the same as {seen[norm]!r} (names are case-insensitive)", "merge the two entries", at_key=True))
            seen.setdefault(norm, key)

    domains = data.get("domains")
    scan(domains, ("domains",), to_a_label)
    scan(data.get("hosts"), ("hosts",), lambda k: str(k).lower())
    if isinstance(domains, dict):
        for name, domain in domains.items():
            if isinstance(domain, dict):
                for part in ("mailboxes", "aliases"):
                    scan(domain.get(part), ("domains", name, part), lambda k: str(k).lower())
    return issues


def _dedupe(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


# ---------------------------------------------------------------------------- pydantic errors

_TYPE_WORDS = {
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
}


def _from_pydantic(err: Any) -> Issue:
    # Pydantic may tag a location with its validator ("function-plain[...]") or a union branch
    # ("union[...]", model.Spam); keys of the file never start so.
    loc: list[str | int] = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union[")) and p.endswith("]"))]
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        loc.pop()
        return Issue(tuple(loc), err["msg"], ctx.get("hint", ""), at_key=True)
    path = tuple(loc)
    if kind == "provision":
        return Issue(path, err["msg"], ctx.get("hint", ""))
    if kind == "extra_forbidden":
        known = _known_keys(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else ("known keys: " + ", ".join(known) if known else "")
        return Issue(path, "unknown key", hint, at_key=True)
    if kind == "missing":
        return Issue(path, "required key is missing", f"add {path[-1]}:", at_key=True)
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", ""))
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
        close = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}?" if close else ""
        return Issue(path, f"{err.get('input')!r} is not one of: {', '.join(choices)}", hint)
    if kind == "string_pattern_mismatch":
        return Issue(path, f"{err.get('input')!r} contains characters that are not accepted here", "no spaces, quotes, '#', ',' or line breaks")
    if kind == "too_short":
        return Issue(path, "must not be empty", "list at least one item")
    if kind in _TYPE_WORDS:
        return Issue(path, f"{_TYPE_WORDS[kind]}, got {_describe(err.get('input'))}")
    message = err["msg"].removeprefix("Value error, ")
    return Issue(path, message[:1].lower() + message[1:])


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if len(repr(value)) < 40 else type(value).__name__


def _unwrap(annotation: Any) -> Any:
    """The model class reached through Optional, tuple, dict and Annotated wrappers."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
            return models[0] if models else None
        elif origin in (tuple, list):
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return annotation


def _known_keys(parent: PathKey) -> list[str]:
    model: Any = Site
    index = 0
    while index < len(parent):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(parent[index]))
        if field is None:
            return []
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        model = _unwrap(annotation)
        index += 1
        if origin in (dict, tuple, list):
            index += 1  # skip the key / index into the collection
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


# ---------------------------------------------------------------------------- semantic checks


def _partial_domain_checks(data: dict[str, Any]) -> list[Issue]:
    """Domain-local rules for the domains that are valid, so one bad domain hides nothing."""
    issues: list[Issue] = []
    domains = data.get("domains")
    if not isinstance(domains, dict):
        return issues
    hosted = {str(k).lower() for k in domains}
    for key, raw in domains.items():
        try:
            domain = Domain.model_validate(raw)
            name = to_a_label(key)
        except (ValidationError, PydanticCustomError):  # its own errors are already reported
            continue
        issues.extend(check_domain(name, domain, hosted))
    return issues


def check_domain(name: str, domain: Domain, hosted: set[str]) -> list[Issue]:
    """Aliases and catch-alls resolve; nothing is declared twice; postmaster exists."""
    base: PathKey = ("domains", name)
    issues: list[Issue] = []
    mailbox_aliases: dict[str, str] = {}
    for local, mailbox in domain.mailboxes.items():
        for alias in mailbox.aliases:
            where = (*base, "mailboxes", local, "aliases")
            if alias in domain.mailboxes:
                issues.append(Issue(where, f"{alias!r} is a mailbox of its own", "remove it from the aliases"))
            elif alias in domain.aliases:
                issues.append(Issue(where, f"{alias!r} is also defined under domains.{name}.aliases", "keep one of the two"))
            elif alias in mailbox_aliases:
                issues.append(Issue(where, f"{alias!r} is already an alias of {mailbox_aliases[alias]}", "an address has one owner"))
            else:
                mailbox_aliases[alias] = local
    for local in domain.aliases:
        if local in domain.mailboxes:
            issues.append(Issue((*base, "aliases", local), f"{local!r} is both a mailbox and an alias", "rename or remove the alias"))
    known = set(domain.mailboxes) | set(domain.aliases) | set(mailbox_aliases)

    def resolve(targets: tuple[str, ...], where: PathKey) -> None:
        for target in targets:
            local, at, other = target.partition("@")
            if not at:
                if local not in known:
                    close = difflib.get_close_matches(local, sorted(known), n=1)
                    hint = f"did you mean {close[0]}?" if close else "name a mailbox or alias of this domain, or a full address"
                    issues.append(Issue(where, f"{local!r} is not a mailbox or alias of {name}", hint))
            elif other == name and local not in known:
                issues.append(Issue(where, f"{target!r} is not a mailbox or alias of {name}", "name an existing mailbox"))

    for local, targets in domain.aliases.items():
        resolve(targets, (*base, "aliases", local))
    if domain.catch_all is not None:
        resolve(domain.catch_all, (*base, "catch_all"))
    if domain.relay_to and (domain.mailboxes or domain.aliases or domain.catch_all):
        issues.append(
            Issue((*base, "relay_to"), "a relay_to domain is forwarded whole; it cannot also have mailboxes or aliases", "drop relay_to or the mailboxes")
        )
    elif (domain.mailboxes or domain.aliases) and "postmaster" not in known and domain.catch_all is None:
        # RFC 5321 §4.5.1: every domain that receives mail must accept postmaster@.
        issues.append(Issue(base, "no postmaster address", "add `postmaster: <mailbox>` under aliases (RFC 5321 §4.5.1)", at_key=True))
    return issues


def check_site(site: Site) -> list[Issue]:
    """Rules that involve more than one part of the site, one function a part, in this order."""
    issues: list[Issue] = []
    hosted = set(site.domains)
    for name, domain in site.domains.items():
        issues.extend(check_domain(name, domain, hosted))
    for rules in (_host_issues, _service_issues, _relay_issues, _spf_issues, _mta_sts_issues, _tls_issues, _dns_issues):
        issues.extend(rules(site))
    return issues


def _host_issues(site: Site) -> list[Issue]:
    """Hosts: priorities, unique names and addresses."""
    issues: list[Issue] = []
    fqdns: dict[str, str] = {}
    addresses: dict[str, str] = {}
    for name, host in sorted(site.hosts.items()):
        where: PathKey = ("hosts", name)
        if host.receives_internet_mail and host.mx_priority is None:
            issues.append(Issue((*where, "mx_priority"), "required for a host with mx or backup-mx", "e.g. mx_priority: 10 (lower is preferred)", at_key=True))
        if not host.receives_internet_mail and host.mx_priority is not None:
            issues.append(Issue((*where, "mx_priority"), "only used on mx or backup-mx hosts", "remove it or add mx to services", at_key=True))
        if host.fqdn in site.domains:
            issues.append(Issue((*where, "fqdn"), f"{host.fqdn} is a mail domain of this site; a host needs its own name", f"e.g. mail.{host.fqdn}"))
        if host.fqdn in fqdns:
            issues.append(Issue((*where, "fqdn"), f"{host.fqdn} is also the fqdn of host {fqdns[host.fqdn]}", "each host has its own name"))
        fqdns.setdefault(host.fqdn, name)
        for family in ("ipv4", "ipv6"):
            for index, address in enumerate(getattr(host, family)):
                if str(address) in addresses:
                    issues.append(Issue((*where, family, index), f"{address} is also an address of host {addresses[str(address)]}", ""))
                addresses.setdefault(str(address), name)
        if not host.ipv4 and not host.ipv6 and (host.receives_internet_mail or host.signs_mail):
            issues.append(
                Issue((*where, "ipv4"), "a host that receives or sends mail needs an address (for MX, SPF and PTR)", "add ipv4: [ADDRESS]", at_key=True)
            )
        if host.ansible and host.ansible.connection == "local" and host.ansible.host:
            issues.append(Issue((*where, "ansible", "host"), "not used with connection: local", "remove host or the connection", at_key=True))
    return issues


def _service_issues(site: Site) -> list[Issue]:
    """Services: one mailbox store, and an mx for every domain that receives mail."""
    issues: list[Issue] = []
    stores = [name for name, host in sorted(site.hosts.items()) if host.stores_mailboxes]
    has_mailboxes = any(d.mailboxes for d in site.domains.values())
    if len(stores) > 1:
        for name in stores[1:]:
            issues.append(
                Issue(("hosts", name, "services"), f"only one host may store mailboxes (imap/pop3); {stores[0]} already does", "move imap/pop3 to one host")
            )
    if has_mailboxes and not stores:
        issues.append(
            Issue(("hosts",), "mailboxes are declared but no host has imap or pop3 to store them", "add imap to the services of one host", at_key=True)
        )
    receiving = [d for d, dom in site.domains.items() if dom.receives_mail]
    if receiving and not site.mx_hosts:
        issues.append(
            Issue(("hosts",), f"domains receive mail ({receiving[0]}, ...) but no host has the mx service", "add mx to a host's services", at_key=True)
        )
    if site.mx_hosts and not any(h.has(Service.MX) for _, h in site.mx_hosts):
        issues.append(Issue(("hosts",), "a backup-mx needs a primary: no host has the mx service", "add mx to a host's services", at_key=True))
    return issues


def _relay_issues(site: Site) -> list[Issue]:
    """Relay: declared parts must be used."""
    issues: list[Issue] = []
    if site.relay.networks and not site.hosts_with(Service.RELAY):
        issues.append(
            Issue(
                ("relay", "networks"),
                "trusted networks are declared but no host has the relay service",
                "add relay to a host's services, or remove relay.networks",
                at_key=True,
            )
        )
    if site.hosts_with(Service.RELAY) and not site.relay.networks:
        name = site.hosts_with(Service.RELAY)[0][0]
        issues.append(
            Issue(
                ("hosts", name, "services"),
                "a relay host needs relay.networks: the clients that may relay through it",
                "add relay: {networks: [192.168.10.0/24]}",
            )
        )
    for dest in site.relay.transports:
        if dest in site.domains:
            issues.append(
                Issue(("relay", "transports", dest), f"{dest} is a domain of this site", "use domains.<name>.relay_to to forward a whole domain", at_key=True)
            )
    return issues


def _spf_issues(site: Site) -> list[Issue]:
    """SPF: RFC 7208 §4.6.4 allows 10 DNS-querying terms; ours are includes (hosts are ip4/ip6)."""
    issues: list[Issue] = []
    for where, spf in [(("policy", "spf", "include"), site.policy.spf)] + [
        (("domains", d, "spf", "include"), dom.spf) for d, dom in site.domains.items() if dom.spf
    ]:
        if spf is not None and len(spf.include) > 10:
            issues.append(
                Issue(
                    where,
                    f"{len(spf.include)} includes: SPF allows at most 10 DNS lookups (RFC 7208 §4.6.4), receivers would return permerror",
                    "drop includes, or ask the providers for ip4/ip6 ranges",
                )
            )
    return issues


def _mta_sts_issues(site: Site) -> list[Issue]:
    """MTA-STS enforce with a certificate no sender trusts loses inbound mail (RFC 8461 §4.2)."""
    issues: list[Issue] = []
    if site.tls.source.value == "self-signed":
        for d in sorted(site.domains):
            mode = site.mta_sts_policy(d).mode
            if mode.value == "enforce":
                where = (
                    ("domains", d, "mta_sts", "mode")
                    if (override := site.domains[d].mta_sts) is not None and "mode" in override.model_fields_set
                    else ("policy", "mta_sts", "mode")
                )
                issues.append(
                    Issue(
                        where,
                        "enforce with tls.source: self-signed: senders that honour MTA-STS would refuse to deliver",
                        "use testing until the hosts have certificates from a public CA (tls.source: acme, or files)",
                    )
                )
                break
    return issues


def _tls_issues(site: Site) -> list[Issue]:
    """TLS: exactly the block the source needs."""
    issues: list[Issue] = []
    tls = site.tls
    if tls.source.value == "files" and tls.files is None:
        issues.append(
            Issue(("tls", "source"), "source: files needs tls.files with cert and key", "add files: {cert: /path/fullchain.pem, key: /path/privkey.pem}")
        )
    if tls.source.value != "files" and tls.files is not None:
        issues.append(Issue(("tls", "files"), f"not used with source: {tls.source.value}", "set source: files or remove files", at_key=True))
    if tls.source.value != "acme" and tls.acme is not None:
        issues.append(Issue(("tls", "acme"), f"not used with source: {tls.source.value}", "set source: acme or remove acme", at_key=True))
    if tls.source.value == "acme" and tls.acme is None:
        issues.append(Issue(("tls", "source"), "source: acme needs tls.acme with the account's email", "add acme: {email: hostmaster@example.com}"))
    web = site.hosts_with(Service.WEB)
    for name, _ in web:
        if tls.source.value != "acme":
            # The web side's names (mta-sts.<domain>, autoconfig.<domain>) need a certificate that covers them.
            issues.append(
                Issue(("hosts", name, "services"), f"web is served only with tls.source: acme (not {tls.source.value})", "set tls.source: acme, or drop web")
            )
    for name, _ in web[1:]:
        # RFC 8555 §8.3: the CA fetches the http-01 token from any address of the name; one host answers for them all.
        issues.append(Issue(("hosts", name, "services"), f"only one host may serve web; {web[0][0]} already does", "keep web on one host"))
    return issues


# A Python dotted path to an octoDNS provider class (octodns_bind.Rfc2136Provider); imported at push.
_PROVIDER_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")
# Options that carry credentials: written in the site file they would be in git in plaintext.
_SECRET_OPTION = re.compile(r"secret|password|token|api_?key|credential", re.I)


def _dns_issues(site: Site) -> list[Issue]:
    """dns.targets: a provider class each, credentials as references; every name used is declared."""
    issues: list[Issue] = []
    targets = site.dns.targets
    declared = ", ".join(sorted(targets)) or "none declared under dns.targets"
    for name, options in sorted(targets.items()):
        where: PathKey = ("dns", "targets", name)
        if name == MANUAL:
            issues.append(Issue(where, f"{MANUAL!r} means records entered by hand; a target cannot be named so", "choose another name, e.g. primary", at_key=True))
        provider = options.get("class")
        if provider is None:
            issues.append(Issue(where, "a target needs class: its octoDNS provider", "e.g. class: octodns_bind.Rfc2136Provider", at_key=True))
        elif not isinstance(provider, str) or not _PROVIDER_CLASS.fullmatch(provider):
            issues.append(Issue((*where, "class"), f"{provider!r} is not a Python class path", "module.Class, e.g. octodns_bind.Rfc2136Provider"))
        for option, value in sorted(options.items()):
            if _SECRET_OPTION.search(option) and not isinstance(value, SecretRef):
                issues.append(
                    Issue((*where, option), "credentials are never written in the site file", "use {env: NAME} or {file: relative/path}, resolved at push time")
                )
    uses = [(("dns", "reverse"), site.dns.reverse)] + [(("domains", d, "dns"), dom.dns) for d, dom in sorted(site.domains.items())]
    for where, chosen in uses:
        if chosen is None or (chosen == MANUAL and where[0] == "domains") or chosen in targets:
            continue
        close = difflib.get_close_matches(chosen, sorted(targets), n=1)
        hint = f"did you mean {close[0]}?" if close else f"declared targets: {declared}" + (f"; or {MANUAL}" if where[0] == "domains" else "")
        issues.append(Issue(where, f"{chosen!r} is not a dns.targets name", hint))
    return issues
