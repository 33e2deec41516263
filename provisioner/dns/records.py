"""One list of DNS records for the whole site; every output format is a view of it.

Each record carries its owner name (A-label), type, TTL, value, level and a one-line
purpose in English and Japanese. Rule ids are explained in docs/rules.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from provisioner.keys.public import cached_public_value
from provisioner.keys.store import WITHDRAWN_DAYS, DkimKey, KeyState, KeyStatus
from provisioner.site.model import DmarcPolicyConfig, Host, MtaStsPolicy, Site, SpfPolicy
from provisioner.site.types import MtaStsMode, Service, SpfAll, TlsSource

TTL = 3600


class Level(StrEnum):
    REQUIRED = "Required"
    RECOMMENDED = "Recommended"
    OPTIONAL = "Optional"


@dataclass(frozen=True)
class Purpose:
    en: str
    ja: str


@dataclass(frozen=True, order=True)
class Record:
    zone: str  # the zone the record is entered in (A-label, no trailing dot)
    name: str  # absolute owner name, A-label, no trailing dot
    type: str
    value: str  # presentation form; TXT is the logical string, unquoted and unsplit
    ttl: int
    level: Level
    purpose: Purpose
    at_provider: bool = False  # PTR: set at the hosting/IP provider, not in the domain's zone

    @property
    def relative_name(self) -> str:
        """The name as typed into a DNS panel for its zone: '@' for the apex."""
        if self.name == self.zone:
            return "@"
        return self.name.removesuffix("." + self.zone)


@dataclass(frozen=True)
class Note:
    """Something the person entering the records must know or do that is not a record."""

    domain: str
    en: str
    ja: str


@dataclass(frozen=True)
class RecordSet:
    records: list[Record]
    notes: list[Note]
    mta_sts_policies: dict[str, str]  # domain -> policy file text
    by_zone: dict[str, list[Record]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Grouped once: a site of 5,000 zones must not scan every record per zone.
        for record in self.records:
            self.by_zone.setdefault(record.zone, []).append(record)

    def zones(self) -> list[str]:
        return sorted(self.by_zone)

    def in_zone(self, zone: str) -> list[Record]:
        return self.by_zone.get(zone, [])

    def keys(self) -> set[tuple[str, str, str]]:
        """(name, type, value) of every record: what the DNS diff compares (provisioner.dns.diff)."""
        return {(r.name, r.type, r.value) for r in self.records}


# ---------------------------------------------------------------------------- helpers


def zone_of(name: str, site: Site) -> str:
    """The site domain a name lives under (longest match), else its parent domain."""
    best = ""
    for domain in site.domains:
        if (name == domain or name.endswith("." + domain)) and len(domain) > len(best):
            best = domain
    return best or name.split(".", 1)[1]


def reverse_zone(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The /24 (IPv4) or /64 (IPv6, nibbles) reverse zone an address's PTR lives in."""
    labels = address.reverse_pointer.split(".")
    return ".".join(labels[1:] if address.version == 4 else labels[16:])


def spf_value(site: Site, policy: SpfPolicy) -> str:
    terms = ["v=spf1"]
    for _, host in site.sending_hosts:
        terms += [f"ip4:{a}" for a in host.ipv4] + [f"ip6:{a}" for a in host.ipv6]
    terms += [f"include:{d}" for d in policy.include]
    terms.append("-all" if policy.all is SpfAll.FAIL else "~all")
    return " ".join(dict.fromkeys(terms))


def dmarc_value(policy: DmarcPolicyConfig) -> str:
    """RFC 7489 §6.3 / RFC 9989: v first, p second; no pct (removed by DMARCbis)."""
    tags = ["v=DMARC1", f"p={policy.p.value}"]
    if policy.sp is not None:
        tags.append(f"sp={policy.sp.value}")
    if policy.np is not None:
        tags.append(f"np={policy.np.value}")
    if policy.rua:
        tags.append("rua=" + ",".join(policy.rua))
    tags += [f"adkim={policy.adkim.value}", f"aspf={policy.aspf.value}"]
    return "; ".join(tags)


def mta_sts_policy(site: Site, policy: MtaStsPolicy) -> str:
    """RFC 8461 §3.2: version, mode, one mx line per MX host, max_age; CRLF line ends."""
    lines = ["version: STSv1", f"mode: {policy.mode.value}"]
    lines += [f"mx: {host.fqdn}" for _, host in site.mx_hosts]
    lines.append(f"max_age: {policy.max_age}")
    return "\r\n".join(lines) + "\r\n"


def mta_sts_id(policy_text: str) -> str:
    """RFC 8461 §3.1: id changes whenever the policy changes; here exactly then (a hash of it)."""
    return hashlib.sha256(policy_text.encode()).hexdigest()[:20]


def publishes_mta_sts(site: Site, domain_name: str) -> bool:
    """A domain that receives mail and whose policy is not mode none publishes MTA-STS."""
    return site.domains[domain_name].receives_mail and site.mta_sts_policy(domain_name).mode is not MtaStsMode.NONE


def offers_autoconfig(site: Site, domain_name: str) -> bool:
    """Client discovery (autoconfig, SRV) is for domains with mailboxes on a mailbox host."""
    return bool(site.domains[domain_name].mailboxes) and site.mailbox_host is not None


def web_names(site: Site) -> list[tuple[str, tuple[str, ...]]]:
    """(domain, the names the web host serves for it) in domain order, when the site serves its
    web side (Site.serves_web): mta-sts.<domain> (RFC 8461 §3.3) and autoconfig.<domain>."""
    if not site.serves_web:
        return []
    out = []
    for domain_name in sorted(site.domains):
        names = [f"mta-sts.{domain_name}"] if publishes_mta_sts(site, domain_name) else []
        names += [f"autoconfig.{domain_name}"] if offers_autoconfig(site, domain_name) else []
        if names:
            out.append((domain_name, tuple(names)))
    return out


# CAA issuer domains (RFC 8659 §4.2) of the CAs whose ACME directories are known; another CA's is
# not guessed: no CAA record then, and a note.
CAA_ISSUERS = {
    "acme-v02.api.letsencrypt.org": "letsencrypt.org",
    "acme-staging-v02.api.letsencrypt.org": "letsencrypt.org",
    "acme.zerossl.com": "sectigo.com",
    "dv.acme-v02.api.pki.goog": "pki.goog",
    "api.buypass.com": "buypass.com",
}


def caa_value(site: Site) -> str | None:
    """The CAA issue value allowing the site's ACME CA (and account, RFC 8657), or None when unknown."""
    acme = site.tls.acme
    if site.tls.source is not TlsSource.ACME or acme is None:
        return None
    issuer = CAA_ISSUERS.get(acme.directory.removeprefix("https://").split("/", 1)[0].split(":", 1)[0].lower())
    if issuer is None:
        return None
    account = f"; accounturi={acme.account_uri}" if acme.account_uri else ""
    return f'0 issue "{issuer}{account}"'


def dkim_value(keys: KeyState, key: DkimKey) -> str:
    """The TXT value publishing `key` (RFC 6376 §3.6.1), from its cached public half."""
    k, p = cached_public_value(key.path, functools.partial(keys.read_private, key))
    return f"v=DKIM1; k={k}; p={p}"


REVOKED_DKIM = "v=DKIM1; p="  # RFC 6376 §3.6.1: an empty p= means the key is revoked


def _mailto_domain(uri: str) -> str:
    return uri.removeprefix("mailto:").rpartition("@")[2]


# ---------------------------------------------------------------------------- the list


@dataclass
class _Collector:
    """The records and notes of a site as the families below add them (sorted at the end)."""

    site: Site
    keys: KeyState
    today: dt.date
    records: list[Record] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)  # MTA-STS policy text per domain
    spf_values: dict[SpfPolicy, str] = field(default_factory=dict)  # the same for every domain on the site policy: built once

    def add(self, zone: str, name: str, rtype: str, value: str, level: Level, en: str, ja: str, at_provider: bool = False) -> None:
        self.records.append(Record(zone, name, rtype, value, TTL, level, Purpose(en, ja), at_provider))

    def note(self, domain: str, en: str, ja: str) -> None:
        self.notes.append(Note(domain, en, ja))


def site_records(site: Site, keys: KeyState, today: dt.date | None = None) -> RecordSet:
    out = _Collector(site, keys, today or dt.date.today())
    _host_records(out)
    _caa_records(out)
    mailbox = site.mailbox_host
    submission = site.hosts_with(Service.SUBMISSION)
    for domain_name in sorted(site.domains):
        domain = site.domains[domain_name]
        _mx_records(out, domain_name, domain.receives_mail)
        _spf_records(out, domain_name)
        _dkim_records(out, domain_name)
        _dmarc_records(out, domain_name)
        _mta_sts_records(out, domain_name, domain.receives_mail)
        _tls_rpt_records(out, domain_name, domain.receives_mail)
        if domain.mailboxes and mailbox is not None:
            _client_records(out, domain_name, mailbox[1], submission[0][1] if submission else None)
    out.records.sort(key=lambda r: (r.zone, r.name, _TYPE_ORDER.get(r.type, 99), r.type, r.value))
    return RecordSet(out.records, out.notes, out.policies)


def _host_records(out: _Collector) -> None:
    """Hosts: forward names, reverse names, HELO SPF."""
    for _, host in sorted(out.site.hosts.items(), key=lambda item: item[1].fqdn):
        zone = zone_of(host.fqdn, out.site)
        for a4 in host.ipv4:
            out.add(zone, host.fqdn, "A", str(a4), Level.REQUIRED, "address of the mail host", "メールサーバのIPv4アドレス")
        for a6 in host.ipv6:
            out.add(zone, host.fqdn, "AAAA", str(a6), Level.REQUIRED, "IPv6 address of the mail host", "メールサーバのIPv6アドレス")
        if host.addresses:
            helo = ["v=spf1"] + [f"ip4:{a}" for a in host.ipv4] + [f"ip6:{a}" for a in host.ipv6] + ["-all"]
            out.add(zone, host.fqdn, "TXT", " ".join(helo), Level.RECOMMENDED, "SPF for the host's HELO name (RFC 7208 §2.3)", "HELO名のSPF（RFC 7208 §2.3）")
        addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [*host.ipv4, *host.ipv6]
        for address in addresses:
            out.add(
                reverse_zone(address),
                address.reverse_pointer,
                "PTR",
                host.fqdn + ".",
                Level.REQUIRED,
                "reverse DNS: the address names its host (FCrDNS); set at your hosting/IP provider",
                "逆引き：IPアドレスからホスト名へ（FCrDNS）。ホスティング/IP提供事業者で設定",
                at_provider=True,
            )


def _caa_records(out: _Collector) -> None:
    """CAA on each host's name (RFC 8659): only the site's ACME CA may issue for it. Set on the
    names we obtain certificates for, not the domain's apex, which would also bind the domain's
    other names (a website's CA). mta-sts./autoconfig. are CNAMEs to the web host: a CA follows
    them (RFC 8659 §3) to the web host's CAA."""
    site = out.site
    value = caa_value(site)
    if site.tls.source is not TlsSource.ACME:
        return
    if value is None:
        assert site.tls.acme is not None  # validation requires it with source acme
        for domain_name in sorted(site.domains)[:1]:
            out.note(
                domain_name,
                f"No CAA record: the CAA issuer name of {site.tls.acme.directory} is not known here; add one for each host (RFC 8659) if you want it.",
                f"CAAレコードなし：{site.tls.acme.directory} のCAA発行者名が不明です。必要なら各ホストに追加してください（RFC 8659）。",
            )
        return
    for _, host in sorted(site.hosts.items(), key=lambda item: item[1].fqdn):
        out.add(
            zone_of(host.fqdn, site),
            host.fqdn,
            "CAA",
            value,
            Level.RECOMMENDED,
            "CAA: only the site's ACME CA may issue certificates for this host (RFC 8659, RFC 8657)",
            "CAA：このホストの証明書を発行できるのはサイトのACME認証局のみ（RFC 8659、RFC 8657）",
        )


def _mx_records(out: _Collector, domain_name: str, receives: bool) -> None:
    """MX, or a null MX for a domain that never receives mail (RFC 7505)."""
    if receives:
        for _, host in out.site.mx_hosts:
            out.add(
                domain_name,
                domain_name,
                "MX",
                f"{host.mx_priority} {host.fqdn}.",
                Level.REQUIRED,
                f"mail for the domain goes to {host.fqdn}",
                f"このドメイン宛のメールの配送先 {host.fqdn}",
            )
    else:
        out.add(
            domain_name,
            domain_name,
            "MX",
            "0 .",
            Level.RECOMMENDED,
            "null MX: this domain receives no mail (RFC 7505)",
            "null MX：このドメインはメールを受け取らない（RFC 7505）",
        )


def _spf_records(out: _Collector, domain_name: str) -> None:
    site = out.site
    spf = site.spf_policy(domain_name)
    if spf not in out.spf_values:
        out.spf_values[spf] = spf_value(site, spf)
    out.add(
        domain_name,
        domain_name,
        "TXT",
        out.spf_values[spf],
        Level.REQUIRED,
        "SPF: which servers may send for the domain",
        "SPF：このドメインのメールを送信してよいサーバ",
    )
    if site.relay.smarthost and not spf.include:
        out.note(
            domain_name,
            f"Outbound mail leaves through the smarthost {site.relay.smarthost.host}: add its SPF include under policy.spf.include.",
            f"送信メールはスマートホスト {site.relay.smarthost.host} 経由です。その事業者のSPF includeを policy.spf.include に追加してください。",
        )


_DKIM_STATUS = {
    KeyStatus.ACTIVE: ("signing", "署名に使用中"),
    KeyStatus.STANDBY: ("standby for the next rotation", "次回のローテーション用に事前公開"),
    KeyStatus.RETIRED: ("retired, kept for verification", "退役済み：検証用に公開を継続"),
}


def _dkim_records(out: _Collector, domain_name: str) -> None:
    """Published keys (active, standby, retired), then withdrawn selectors published revoked for a while."""
    keys = out.keys
    for key in keys.keys(domain_name, (KeyStatus.ACTIVE, KeyStatus.STANDBY, KeyStatus.RETIRED)):
        level = Level.REQUIRED if key.status is KeyStatus.ACTIVE else Level.RECOMMENDED
        what = _DKIM_STATUS[key.status]
        out.add(
            domain_name,
            f"{key.selector}._domainkey.{domain_name}",
            "TXT",
            dkim_value(keys, key),
            level,
            f"DKIM public key ({key.algorithm}, {what[0]})",
            f"DKIM公開鍵（{key.algorithm}、{what[1]}）",
        )
    for gen in keys.domains.get(domain_name, []):
        if gen.status is KeyStatus.WITHDRAWN and (out.today - dt.date.fromisoformat(gen.since)).days < WITHDRAWN_DAYS:
            for algorithm in sorted(gen.algorithms):
                # RFC 6376 §3.6.1: an empty p= means the key is revoked.
                out.add(
                    domain_name,
                    f"{gen.selector(algorithm)}._domainkey.{domain_name}",
                    "TXT",
                    REVOKED_DKIM,
                    Level.RECOMMENDED,
                    "revoked DKIM key (withdrawn selector)",
                    "失効したDKIM鍵（取り下げたセレクタ）",
                )


def _dmarc_records(out: _Collector, domain_name: str) -> None:
    """The policy, and the report receiver's authorisation where reports go to another domain."""
    dmarc = out.site.dmarc_policy(domain_name)
    out.add(domain_name, f"_dmarc.{domain_name}", "TXT", dmarc_value(dmarc), Level.REQUIRED, "DMARC policy and report address", "DMARCポリシーとレポート送付先")
    for uri in dmarc.rua:
        target = _mailto_domain(uri)
        if target == domain_name or target.endswith("." + domain_name) or domain_name.endswith("." + target):
            continue  # same organisation: no authorisation needed (RFC 7489 §7.1)
        if target in out.site.domains:
            # RFC 7489 §7.1: the report receiver authorises reports about another domain.
            out.add(
                target,
                f"{domain_name}._report._dmarc.{target}",
                "TXT",
                "v=DMARC1",
                Level.REQUIRED,
                f"allows DMARC reports about {domain_name} to be sent to {target}",
                f"{domain_name} のDMARCレポートを {target} で受け取る許可",
            )
        else:
            out.note(
                domain_name,
                f'DMARC reports go to {target}, outside this site: {target} must publish {domain_name}._report._dmarc.{target} TXT "v=DMARC1", or no reports arrive.',
                f'DMARCレポートの送付先 {target} はこのサイトの外です。{target} 側で {domain_name}._report._dmarc.{target} TXT "v=DMARC1" を公開してもらわないとレポートは届きません。',
            )


def _mta_sts_records(out: _Collector, domain_name: str, receives: bool) -> None:
    if not receives or not publishes_mta_sts(out.site, domain_name):
        return
    text = mta_sts_policy(out.site, out.site.mta_sts_policy(domain_name))
    out.policies[domain_name] = text
    out.add(
        domain_name,
        f"_mta-sts.{domain_name}",
        "TXT",
        f"v=STSv1; id={mta_sts_id(text)}",
        Level.RECOMMENDED,
        "MTA-STS: senders must use TLS (policy at https://mta-sts.DOMAIN)",
        "MTA-STS：送信側にTLSを求める（ポリシーは https://mta-sts.ドメイン）",
    )
    if out.site.serves_web:
        _web_name(
            out,
            f"mta-sts.{domain_name}",
            Level.RECOMMENDED,
            "MTA-STS policy host: {web} serves the policy over HTTPS (RFC 8461 §3.3)",
            "MTA-STSポリシーのホスト：{web} がHTTPSで配信（RFC 8461 §3.3）",
        )
        return
    out.note(
        domain_name,
        f"Serve build/dns/mta-sts/{mta_sts_id(text)}.txt at https://mta-sts.{domain_name}/.well-known/mta-sts.txt with a certificate browsers trust.",
        f"build/dns/mta-sts/{mta_sts_id(text)}.txt を https://mta-sts.{domain_name}/.well-known/mta-sts.txt で公開してください（正規の証明書が必要）。",
    )


def _web_name(out: _Collector, name: str, level: Level, en: str, ja: str) -> None:
    """A name the web host serves (dns.records.web_names): a CNAME to it, in the zone of its domain."""
    web = out.site.web_hosts[0][1].fqdn
    out.add(name.split(".", 1)[1], name, "CNAME", f"{web}.", level, en.format(web=web), ja.format(web=web))


def _tls_rpt_records(out: _Collector, domain_name: str, receives: bool) -> None:
    tls_rpt = out.site.tls_rpt_policy(domain_name)
    if receives and tls_rpt.rua:
        out.add(
            domain_name,
            f"_smtp._tls.{domain_name}",
            "TXT",
            "v=TLSRPTv1; rua=" + ",".join(tls_rpt.rua),
            Level.RECOMMENDED,
            "TLS-RPT: where senders report TLS problems (RFC 8460)",
            "TLS-RPT：TLSの問題の報告先（RFC 8460）",
        )


def _client_records(out: _Collector, domain_name: str, store: Host, submission: Host | None) -> None:
    """Client discovery for domains with mailboxes (RFC 6186, RFC 8314 §5.1)."""
    offered: dict[str, tuple[int, Host | None]] = {
        "_submissions._tcp": (465, submission),
        "_submission._tcp": (587, submission),
        "_imaps._tcp": (993, store if store.has(Service.IMAP) else None),
        "_pop3s._tcp": (995, store if store.has(Service.POP3) else None),
        "_imap._tcp": (143, None),  # cleartext: never offered
        "_pop3._tcp": (110, None),
    }
    for label, (port, server) in offered.items():
        owner = f"{label}.{domain_name}"
        if server is None:
            out.add(domain_name, owner, "SRV", "0 0 0 .", Level.OPTIONAL, f"service not offered (port {port})", f"このサービスは提供しない（ポート{port}）")
        else:
            out.add(
                domain_name,
                owner,
                "SRV",
                f"0 1 {port} {server.fqdn}.",
                Level.OPTIONAL,
                f"mail programs find the server for port {port}",
                f"メールソフトがポート{port}のサーバを見つけるため",
            )
    if out.site.serves_web:
        _web_name(out, f"autoconfig.{domain_name}", Level.OPTIONAL, "Thunderbird autoconfig, served by {web}", "Thunderbirdの自動設定（{web} が配信）")
        # No autodiscover name once a web server answers on 443: it serves no autodiscover POX and
        # its certificate does not name autodiscover.<domain>, so Outlook would show a certificate
        # warning instead of falling through to its other methods (docs/certificates.md).
        return
    out.add(
        domain_name,
        f"autoconfig.{domain_name}",
        "CNAME",
        f"{store.fqdn}.",
        Level.OPTIONAL,
        "Thunderbird autoconfig (serve build/dns/autoconfig/config-v1.1.xml)",
        "Thunderbirdの自動設定（build/dns/autoconfig/config-v1.1.xml を公開）",
    )
    out.add(domain_name, f"autodiscover.{domain_name}", "CNAME", f"{store.fqdn}.", Level.OPTIONAL, "Outlook autodiscover name", "Outlookの自動検出名")


_TYPE_ORDER = {"SOA": 0, "NS": 1, "MX": 2, "A": 3, "AAAA": 4, "TXT": 5, "SRV": 6, "CNAME": 7, "PTR": 8, "CAA": 9}
