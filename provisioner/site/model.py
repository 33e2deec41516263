"""The site model: validated once at the door, frozen afterwards.

Field names are the site file's keys (docs/site-file.md); they are fixed. Policy
sections are the same classes at site level and as per-domain overrides: what a domain sets
(`model_fields_set`) replaces the site's value, the rest is inherited.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictInt, Tag, field_validator

from provisioner.site.types import (
    DEFAULT_OS,
    Alignment,
    AnsibleHost,
    DkimKeyType,
    DmarcPolicy,
    DnsName,
    DomainName,
    InboundDmarc,
    IPAddress,
    IPv4,
    IPv6,
    LocalPart,
    MtaStsMode,
    OsRelease,
    Password,
    ProviderOption,
    ProviderValue,
    RelayNetwork,
    SecretValue,
    Service,
    SimpleName,
    Size,
    SpamOff,
    SpfAll,
    SpfInclude,
    Targets,
    Text,
    TlsSource,
    Transport,
    Version,
    fail,
    visible,
)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    @field_validator("*", mode="after")
    @classmethod
    def _visible(cls, value: Any) -> Any:
        """The one text rule (types.visible) on every string a field holds, whatever its type.

        Typed values (names, hashes, URIs) check it themselves with an exact position; this
        net covers plain `str` fields with a pattern, and any field added later.
        """
        for text in _strings(value):
            visible(text)
        return value


def _strings(value: Any) -> list[str]:
    """The strings directly in a field's value: itself, tuple items, mapping keys and values."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return [item for item in value if isinstance(item, str)]
    if isinstance(value, dict):
        return [item for pair in value.items() for item in pair if isinstance(item, str)]
    return []


# ---------------------------------------------------------------------------- policy


class SpfPolicy(Frozen):
    all: SpfAll = Field(SpfAll.FAIL, description="fail (-all) or softfail (~all)")
    # RFC 7208 §5.2: include takes a domain-spec, a DNS name (underscore labels), not a host name.
    include: tuple[SpfInclude, ...] = Field((), description="third-party senders, e.g. _spf.google.com")


class DkimPolicy(Frozen):
    keys: tuple[DkimKeyType, ...] = Field((DkimKeyType.RSA_2048,), description="one key per algorithm", min_length=1)

    @field_validator("keys")
    @classmethod
    def _rsa_first(cls, keys: tuple[DkimKeyType, ...]) -> tuple[DkimKeyType, ...]:
        if len(set(keys)) != len(keys):
            raise fail("a key type is listed twice", "list each key type once")
        rsa = [k for k in keys if k is not DkimKeyType.ED25519]
        if not rsa:
            # RFC 8463 §1: ed25519 verifiers are not yet universal; sign with RSA as well.
            raise fail("ed25519 is accepted only beside an RSA key", "e.g. keys: [rsa-2048, ed25519]")
        if len(rsa) > 1:
            raise fail("at most one RSA key size per domain", "pick one of rsa-2048, rsa-3072, rsa-4096")
        return keys


class DmarcPolicyConfig(Frozen):
    p: DmarcPolicy = Field(DmarcPolicy.QUARANTINE, description="policy for the domain")
    sp: DmarcPolicy | None = Field(None, description="policy for subdomains")
    np: DmarcPolicy | None = Field(None, description="policy for non-existent subdomains (RFC 9989)")
    rua: tuple[Text, ...] = Field((), description="aggregate report addresses, mailto: URIs")
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED

    @field_validator("rua")
    @classmethod
    def _mailto(cls, rua: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_mailto_uri(uri, "DMARC rua") for uri in rua)


class MtaStsPolicy(Frozen):
    mode: MtaStsMode = MtaStsMode.TESTING
    # RFC 8461 §3.2: max_age up to 31557600; weeks are recommended once stable.
    max_age: StrictInt = Field(604800, ge=86400, le=31557600, description="seconds senders cache the policy")


class TlsRptPolicy(Frozen):
    rua: tuple[Text, ...] = Field((), description="TLS report addresses: mailto: or https: URIs")

    @field_validator("rua")
    @classmethod
    def _uris(cls, rua: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for uri in rua:
            if isinstance(uri, str) and uri.startswith("https://") and not any(c in uri for c in ' ;,!\n"'):
                out.append(uri)
            else:
                out.append(_mailto_uri(uri, "TLS-RPT rua"))
        return tuple(out)


class DnsblSite(Frozen):
    zone: DnsName  # RFC 5782 §2: a zone looked up, not a host name
    weight: StrictInt = Field(3, ge=1, le=10)


class SpamThresholds(Frozen):
    """rspamd's actions: from `junk` points a message goes to the Junk folder, from `reject` it is refused."""

    junk: float = Field(6.0, ge=0, le=1000, description="score from which a message is filed into Junk (rspamd action 'add header')")
    reject: float = Field(15.0, ge=0, le=1000, description="score from which a message is refused at SMTP time (rspamd action 'reject')")

    @field_validator("junk", "reject", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"{value!r} is not a number", "a score such as 6 or 7.5")
        return value

    @field_validator("reject")
    @classmethod
    def _above_junk(cls, reject: float, info: Any) -> float:
        junk = info.data.get("junk")
        if junk is not None and reject <= junk:
            raise fail(f"reject ({reject:g}) must be above junk ({junk:g})", "e.g. {junk: 6, reject: 15}")
        return reject


def _spam_kind(value: Any) -> str:
    return "union[off]" if isinstance(value, str | SpamOff) else "union[thresholds]"


# One branch is checked, so a mistake gets one message (validate._from_pydantic drops the tag).
Spam = Annotated[
    Annotated[SpamThresholds, Tag("union[thresholds]")] | Annotated[SpamOff, Tag("union[off]")],
    Discriminator(_spam_kind),
]


class InboundPolicy(Frozen):
    """What the mx and backup-mx hosts check in mail from the Internet (docs/inbound.md)."""

    dmarc: InboundDmarc = Field(
        InboundDmarc.ENFORCE,
        description="mail From this domain that DMARC does not authenticate: enforce (refuse), quarantine (Junk), monitor (annotate)",
    )
    spam: Spam = Field(default_factory=SpamThresholds, description="content filter score thresholds {junk, reject}, or off")
    trusted_forwarders: tuple[DomainName, ...] = Field(
        (), description="ARC sealers (d= of ARC-Seal, RFC 8617) whose chain vouches for mail that failed DMARC on the way"
    )

    @field_validator("trusted_forwarders")
    @classmethod
    def _unique_forwarders(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise fail("a forwarder is listed twice", "list each domain once")
        return names


class DomainInbound(Frozen):
    """A domain's override of policy.inbound: only `dmarc`, which is keyed by the From domain. The
    filter's verdict is one per message at SMTP time (RFC 5321 §4.2.5: one reply to DATA for all
    recipients), so thresholds and forwarders cannot differ by a recipient's domain."""

    dmarc: InboundDmarc = Field(InboundDmarc.ENFORCE, description="mail From this domain that DMARC does not authenticate: enforce, quarantine, monitor")


def _default_dnsbl() -> tuple[DnsblSite, ...]:
    return (DnsblSite(zone="zen.spamhaus.org", weight=3),)


class Policy(Frozen):
    spf: SpfPolicy = SpfPolicy()
    dkim: DkimPolicy = DkimPolicy()
    dmarc: DmarcPolicyConfig = DmarcPolicyConfig()
    mta_sts: MtaStsPolicy = MtaStsPolicy()
    tls_rpt: TlsRptPolicy = TlsRptPolicy()
    inbound: InboundPolicy = InboundPolicy()
    dnsbl: tuple[DnsblSite, ...] = Field(
        default_factory=_default_dnsbl,
        description="DNS blocklists for postscreen on mx hosts (and for `provision check`)",
    )
    resolvers: tuple[IPAddress, ...] = Field(
        (),
        description="validating DNS resolvers OpenDKIM and rspamd ask (opendkim.conf Nameservers, rspamd dns.nameserver); default: OpenDKIM resolves from the root itself, with DNSSEC, rspamd uses /etc/resolv.conf",
    )


def _mailto_uri(uri: object, what: str) -> str:
    if not isinstance(uri, str) or not uri.startswith("mailto:"):
        raise fail(f"{what} {uri!r} is not a mailto: URI", "e.g. mailto:dmarc@example.com")
    address = uri.removeprefix("mailto:")
    local, at, domain = address.rpartition("@")
    if not at or not local or any(c in address for c in " ;,!\n\"'"):
        raise fail(f"{what} {uri!r} is not a mailto: URI with one address", "e.g. mailto:dmarc@example.com")
    from provisioner.site.types import to_a_label

    return f"mailto:{local.lower()}@{to_a_label(domain)}"


# ---------------------------------------------------------------------------- hosts


class AnsibleTarget(Frozen):
    # These reach ssh's command line: nothing may start with '-' (it would be read as an option).
    host: AnsibleHost | None = None
    user: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_-]*$", max_length=32)
    port: StrictInt | None = Field(None, ge=1, le=65535)
    connection: Literal["ssh", "local"] | None = None


class Host(Frozen):
    fqdn: DomainName = Field(description="myhostname, HELO name, PTR target, MX/SRV target")
    ipv4: tuple[IPv4, ...] = ()
    ipv6: tuple[IPv6, ...] = ()
    services: tuple[Service, ...] = Field(min_length=1)
    mx_priority: StrictInt | None = Field(None, ge=0, le=65535)
    os: OsRelease = Field(DEFAULT_OS, description="the Debian release the host runs (debian-13, debian-12); render follows it")
    ansible: AnsibleTarget | None = None

    @field_validator("services")
    @classmethod
    def _unique(cls, services: tuple[Service, ...]) -> tuple[Service, ...]:
        if len(set(services)) != len(services):
            raise fail("a service is listed twice", "list each service once")
        if Service.MX in services and Service.BACKUP_MX in services:
            raise fail("a host is either mx or backup-mx, not both", "drop backup-mx")
        if set(services) == {Service.WEB}:
            # Every host runs Postfix and is in SPF (Site.sending_hosts); the web side goes beside mail.
            raise fail("web is served by a mail host: it cannot be a host's only service", "add web to the services of a mail host, e.g. the mailbox host")
        return services

    def has(self, service: Service) -> bool:
        return service in self.services

    @property
    def receives_internet_mail(self) -> bool:
        return self.has(Service.MX) or self.has(Service.BACKUP_MX)

    @property
    def stores_mailboxes(self) -> bool:
        return self.has(Service.IMAP) or self.has(Service.POP3)

    @property
    def signs_mail(self) -> bool:
        return self.has(Service.SUBMISSION) or self.has(Service.RELAY)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(str(a) for a in (*self.ipv4, *self.ipv6))


# ---------------------------------------------------------------------------- relay, tls


_CA_PATH = r"[A-Za-z0-9_][A-Za-z0-9._@+-]*(?:/[A-Za-z0-9_][A-Za-z0-9._@+-]*)*"


class SmarthostCa(Frozen):
    """A private CA for the smarthost: a PEM file beside the site file, shipped to the hosts."""

    file: str = Field(
        max_length=1024,
        description="PEM certificate(s) of the CA (or the provider's own certificate), relative to the site file",
        json_schema_extra={"pattern": f"^{_CA_PATH}$"},
    )

    @field_validator("file")
    @classmethod
    def _inside(cls, rel: str) -> str:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise fail(f"{rel!r} is not inside the site directory", "a path relative to the site file, without '..', e.g. certs/provider-ca.pem")
        if not re.fullmatch(_CA_PATH, rel):
            raise fail(f"{rel!r} is not an accepted file name", "letters, digits and . _ @ + - in names joined by '/'")
        return rel


class Smarthost(Frozen):
    host: DomainName = Field(description="the provider's name as its certificate names it (verified: TLS level secure)")
    port: StrictInt = Field(587, ge=1, le=65535)
    username: str = Field(pattern=r"^[^\s:#]+$", max_length=256)
    password: SecretValue
    tls_ca: SmarthostCa | None = Field(None, description="trust only this CA for the smarthost, instead of the system's CAs")

    @field_validator("host", mode="before")
    @classmethod
    def _name_not_address(cls, value: object) -> object:
        # Postfix 'secure' matches the certificate against the next-hop *name*
        # (smtp_tls_secure_cert_match = nexthop); an address literal can match no name.
        text = value.strip("[] ") if isinstance(value, str) else ""
        if text and (text.replace(".", "").isdigit() or ":" in text):
            raise fail(
                f"{value!r} is an IP address: the smarthost's certificate cannot be checked against it",
                "write the provider's host name, the one its TLS certificate names (e.g. smtp.provider.example)",
            )
        return value


class Relay(Frozen):
    networks: tuple[RelayNetwork, ...] = Field((), description="trusted networks that may relay without auth")
    smarthost: Smarthost | None = None
    transports: dict[DomainName, Transport] = Field(default_factory=dict)


class TlsFiles(Frozen):
    cert: str = Field(pattern=r"^/[A-Za-z0-9._/@+-]+$", description="absolute path on the hosts: full chain")
    key: str = Field(pattern=r"^/[A-Za-z0-9._/@+-]+$", description="absolute path on the hosts: private key")


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class TlsAcme(Frozen):
    """Certificates from an RFC 8555 CA, obtained and renewed on the hosts (docs/certificates.md)."""

    email: str = Field(pattern=r"^[^\s@\"';,]+@[^\s@\"';,]+$", max_length=254, description="the ACME account's contact (expiry notices)")
    # RFC 8555 §7.1.1: the directory URL is the one thing a client is configured with.
    directory: str = Field(LETS_ENCRYPT, pattern=r"^https://[^\s\"';,]+$", max_length=1024, description="the CA's ACME directory URL")
    account_uri: str | None = Field(
        None,
        pattern=r"^https://[^\s\"';,]+$",
        max_length=1024,
        description="the ACME account URL, once known: CAA records then allow only this account (RFC 8657 accounturi)",
    )


class Tls(Frozen):
    source: TlsSource = TlsSource.SELF_SIGNED
    files: TlsFiles | None = None
    acme: TlsAcme | None = None


# ---------------------------------------------------------------------------- dns (push)

MANUAL = "manual"  # domains.<d>.dns: records entered by hand (the sheet), never pushed


class DnsPush(Frozen):
    """Where records are pushed: octoDNS providers by a name of the site's choosing (docs/dns-push.md)."""

    targets: dict[SimpleName, dict[ProviderOption, ProviderValue]] = Field(
        default_factory=dict,
        description="name -> an octoDNS provider: {class: <provider class>, <its options>}; secrets as {env:}/{file:}",
    )
    reverse: SimpleName | None = Field(None, description="the target reverse zones (PTR records) are pushed to; without it they stay on the sheet")


# ---------------------------------------------------------------------------- domains


class Mailbox(Frozen):
    password: Password
    quota: Size | None = Field(None, description="Dovecot quota, e.g. 2G; none means unlimited")
    aliases: tuple[LocalPart, ...] = ()


class Domain(Frozen):
    mailboxes: dict[LocalPart, Mailbox] = Field(default_factory=dict)
    aliases: dict[LocalPart, Targets] = Field(default_factory=dict)
    catch_all: Targets | None = None
    relay_to: Transport | None = Field(None, description="accept for this domain and forward to this next hop")
    spf: SpfPolicy | None = None
    dkim: DkimPolicy | None = None
    dmarc: DmarcPolicyConfig | None = None
    mta_sts: MtaStsPolicy | None = None
    tls_rpt: TlsRptPolicy | None = None
    inbound: DomainInbound | None = None
    dns: SimpleName | None = Field(None, description="a dns.targets name, or manual (default: the only target if exactly one is declared, else manual)")

    @property
    def receives_mail(self) -> bool:
        return bool(self.mailboxes or self.aliases or self.catch_all or self.relay_to)


_Section = TypeVar("_Section", bound=BaseModel)


def _effective(base: _Section, override: _Section | None) -> _Section:
    """A policy section as it applies to one domain: the keys the domain sets over the site's."""
    if override is None:
        return base
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


class Site(Frozen):
    version: Version
    name: SimpleName = Field(description="site name: [a-z0-9-]+")
    hosts: dict[SimpleName, Host] = Field(min_length=1)
    policy: Policy = Policy()
    relay: Relay = Relay()
    tls: Tls = Tls()
    dns: DnsPush = DnsPush()
    domains: dict[DomainName, Domain] = Field(default_factory=dict)

    # ------------------------------------------------------------------ derived views

    def spf_policy(self, domain: str) -> SpfPolicy:
        """policy.spf as it applies to `domain` (see _effective); likewise the four below."""
        return _effective(self.policy.spf, self.domains[domain].spf)

    def dkim_policy(self, domain: str) -> DkimPolicy:
        return _effective(self.policy.dkim, self.domains[domain].dkim)

    def dmarc_policy(self, domain: str) -> DmarcPolicyConfig:
        return _effective(self.policy.dmarc, self.domains[domain].dmarc)

    def mta_sts_policy(self, domain: str) -> MtaStsPolicy:
        return _effective(self.policy.mta_sts, self.domains[domain].mta_sts)

    def tls_rpt_policy(self, domain: str) -> TlsRptPolicy:
        return _effective(self.policy.tls_rpt, self.domains[domain].tls_rpt)

    def inbound_policy(self, domain: str) -> InboundPolicy:
        override = self.domains[domain].inbound
        if override is None or "dmarc" not in override.model_fields_set:
            return self.policy.inbound
        return self.policy.inbound.model_copy(update={"dmarc": override.dmarc})

    def dns_target(self, domain: str) -> str | None:
        """The dns.targets name `domain`'s records are pushed to, or None (entered by hand)."""
        chosen = self.domains[domain].dns
        if chosen is None:
            return next(iter(self.dns.targets)) if len(self.dns.targets) == 1 else None
        return None if chosen == MANUAL else chosen

    def hosts_with(self, service: Service) -> list[tuple[str, Host]]:
        return [(name, host) for name, host in sorted(self.hosts.items()) if host.has(service)]

    @property
    def mailbox_host(self) -> tuple[str, Host] | None:
        stores = [(n, h) for n, h in sorted(self.hosts.items()) if h.stores_mailboxes]
        return stores[0] if stores else None

    @property
    def web_hosts(self) -> list[tuple[str, Host]]:
        """The hosts that serve the web side of mail: those declaring `web`, else the mailbox host."""
        declared = self.hosts_with(Service.WEB)
        if declared:
            return declared
        return [self.mailbox_host] if self.mailbox_host is not None else []

    @property
    def serves_web(self) -> bool:
        """Whether the web side is served: only with ACME certificates, which cover its names."""
        return self.tls.source is TlsSource.ACME and bool(self.web_hosts)

    @property
    def mx_hosts(self) -> list[tuple[str, Host]]:
        """mx and backup-mx hosts, best priority first."""
        hosts = [(n, h) for n, h in self.hosts.items() if h.receives_internet_mail]
        return sorted(hosts, key=lambda item: (item[1].mx_priority or 0, item[0]))

    @property
    def sending_hosts(self) -> list[tuple[str, Host]]:
        """Hosts whose addresses send mail: submission, relay, and mx/backup-mx (bounces), by name."""
        return [(n, h) for n, h in sorted(self.hosts.items()) if h.signs_mail or h.receives_internet_mail or h.stores_mailboxes]

    @property
    def hosted_domains(self) -> list[str]:
        """Domains whose mail ends in this site's mailboxes (or is aliased on from here)."""
        return sorted(d for d, dom in self.domains.items() if dom.receives_mail and not dom.relay_to)

    @property
    def relay_to_domains(self) -> list[str]:
        return sorted(d for d, dom in self.domains.items() if dom.relay_to)
