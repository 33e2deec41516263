"""The printable DNS sheet: one self-contained HTML page per site, and the same page as PDF.

The sheet is for the person who types the records into a DNS provider's panel and hands the
mail settings to users: per domain the records (name in the zone and in full, type, TTL, a value
that copies whole, level, purpose, a `dig` line to check it), the PTR requests for the hosting
provider and what users type into their mail program. English or Japanese.

Notes addressed to the site author (add an SPF include, serve the MTA-STS policy) are not on the
sheet: they are printed as warnings by `render` and `dns` and kept in records.json.

Decisions live here (grouping, wording, dig lines); templates/sheet.html.j2 only lays them out.
The HTML is deterministic: no timestamps, nothing fetched from the network.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.reversename
import idna

from provisioner.dns.formats import TXT_CHUNK, rdata, txt_strings
from provisioner.dns.records import Level, Record, RecordSet
from provisioner.errors import ProvisionError
from provisioner.site.model import Site
from provisioner.site.types import Service, TlsSource
from provisioner.templating import render_template

LANGS = ("en", "ja")
CHROMIUM = "/usr/bin/chromium"
DEBIAN_PACKAGES = ("chromium", "fonts-noto-cjk")
CHROMIUM_TIMEOUT = 120  # seconds; a cold start on a slow CI machine takes a few

# Every string the sheet shows that is not data. {placeholders} are filled by str.format.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "DNS records and mail settings: {site}",
        "intro": (
            "Enter each record below in the DNS panel of the zone it belongs to. "
            "“Name” is what you type into the panel’s name field (@ means the domain itself); “Full name” is the complete owner name. "
            "Click a value to select all of it, then copy it whole: do not add spaces or line breaks."
        ),
        "txt_intro": (
            "A TXT value longer than 255 octets is stored as several strings of one record. "
            "Panels that take the value as typed split it themselves; panels (and zone files) that want quoted strings take the split form shown under it."
        ),
        "dig_intro": "After the change has propagated, the dig line under each record prints what the world sees; it must match the value (dig shows TXT values in quotes).",
        "pdf_copy": (
            "Printed or PDF copy: copying a long value (a DKIM key) out of a PDF breaks it into lines and may add spaces, "
            "and the record stops working. Copy values from the HTML page (sheet.html, beside this file in build/dns/), or type them."
        ),
        "self_signed": (
            "For now the mail server has a self-signed certificate: every mail program warns, when it connects on ports {ports}, "
            "that the server's identity cannot be verified, and some refuse to connect. This goes away once the administrator "
            "installs a certificate from a public certificate authority; until then, set up accounts only on devices you can check."
        ),
        "levels_heading": "Levels",
        "contents": "Contents",
        "zone": "Zone",
        "domain_heading": "Domain {domain}",
        "records_heading": "Records to enter",
        "records_count": "{n} record{s}",
        "col_name": "Name",
        "col_full": "Full name",
        "col_type": "Type",
        "col_ttl": "TTL",
        "col_level": "Level",
        "col_purpose": "Purpose",
        "value": "Value",
        "split": "As {n} quoted strings ({chunk} octets at most each):",
        "fields": "Panel fields",
        "check": "Check",
        "ptr_heading": "Reverse DNS (PTR): ask your hosting provider",
        "pushed": "Pushed automatically to {target} by provision dns push (or apply): nothing to enter here; check them with provision check.",
        "by_hand": "Entered by hand: no DNS target is set for this zone, so enter each record below in its DNS panel.",
        "ptr_intro": (
            "These records live in the provider’s reverse zone, not in your domain: send this table to the hosting or IP provider "
            "(or set it in their control panel). Many receivers reject mail from an address whose reverse name does not match its host."
        ),
        "col_address": "Address",
        "col_reverse": "Reverse name",
        "col_target": "Must point to",
        "client_heading": "Settings for mail programs",
        "client_intro": "What users type into their mail program (Thunderbird, Outlook, Apple Mail, phones). Many programs find these by themselves from the SRV and autoconfig records.",
        "col_what": "Setting",
        "col_server": "Server",
        "col_port": "Port",
        "col_security": "Security",
        "imap": "Incoming mail (IMAP)",
        "pop3": "Incoming mail (POP3)",
        "smtp": "Outgoing mail (SMTP)",
        "ssl": "SSL/TLS",
        "starttls": "STARTTLS",
        "username": "User name",
        "username_value": "the full email address, e.g. {example}",
        "password": "Password",
        "password_value": "the mailbox password (normal password; the connection is encrypted)",
        "accounts_heading": "Mailboxes",
        "col_address_mail": "Email address",
        "col_login": "User name to type",
        "no_client": "This site stores no mailboxes: there are no mail program settings.",
        "Required": "Required",
        "Recommended": "Recommended",
        "Optional": "Optional",
        "Required_means": "mail is rejected, lost or cannot be sent without it",
        "Recommended_means": "better delivery, security or reports; enter it unless you have a reason",
        "Optional_means": "convenience: mail programs configure themselves",
        "mx_fields": "Priority {pref} · Mail server {host}",
        "srv_fields": "Priority {prio} · Weight {weight} · Port {port} · Target {target}",
    },
    "ja": {
        "title": "DNSレコードとメール設定：{site}",
        "intro": (
            "以下のレコードを、それぞれが属するゾーンのDNS管理画面に登録してください。"
            "「名前」は管理画面の名前（ホスト名）欄に入力する値です（@ はドメインそのもの）。「完全な名前」はドメインまで含めた名前です。"
            "値はクリックすると全体が選択されます。空白や改行を加えずに、そのまま全体をコピーしてください。"
        ),
        "txt_intro": (
            "255オクテットを超えるTXTの値は、1つのレコードの中の複数の文字列として保存されます。"
            "入力された値を自動で分割する管理画面ではそのまま入力し、引用符付きの文字列を求める管理画面（やゾーンファイル）では、下に示す分割した形を使ってください。"
        ),
        "dig_intro": "反映後、各レコードの下の dig コマンドで外部から見える値を確認できます。値と一致する必要があります（dig はTXTの値を引用符付きで表示します）。",
        "pdf_copy": (
            "印刷版・PDF版について：PDFから長い値（DKIM鍵など）をコピーすると、行ごとに分かれたり空白が入ったりして、レコードが機能しなくなります。"
            "値はHTML版（build/dns/ にある sheet.html）からコピーするか、手で入力してください。"
        ),
        "self_signed": (
            "現在、メールサーバは自己署名証明書を使っています。ポート{ports}に接続すると、どのメールソフトも「サーバの身元を確認できない」と警告し、"
            "接続を拒否するものもあります。管理者が公的な認証局の証明書を導入すれば警告は出なくなります。それまでは、確認できる端末でのみアカウントを設定してください。"
        ),
        "levels_heading": "重要度",
        "contents": "目次",
        "zone": "ゾーン",
        "domain_heading": "ドメイン {domain}",
        "records_heading": "登録するレコード",
        "records_count": "{n}件のレコード",
        "col_name": "名前",
        "col_full": "完全な名前",
        "col_type": "種類",
        "col_ttl": "TTL",
        "col_level": "重要度",
        "col_purpose": "目的",
        "value": "値",
        "split": "引用符付きの{n}個の文字列（各{chunk}オクテット以下）として：",
        "fields": "管理画面の各欄",
        "check": "確認",
        "ptr_heading": "逆引き（PTR）：ホスティング事業者への依頼",
        "pushed": "provision dns push（または apply）が {target} に自動で登録します。ここで入力する必要はありません。provision check で確認してください。",
        "by_hand": "手入力：このゾーンにはDNSターゲットが設定されていません。以下の各レコードをDNS管理画面で入力してください。",
        "ptr_intro": (
            "これらのレコードはドメインではなく事業者の逆引きゾーンに登録されます。この表をホスティング/IP提供事業者に送って設定を依頼してください"
            "（または事業者の管理画面で設定してください）。逆引き名がホスト名と一致しないアドレスからのメールは、多くの受信側で拒否されます。"
        ),
        "col_address": "IPアドレス",
        "col_reverse": "逆引き名",
        "col_target": "設定するホスト名",
        "client_heading": "メールソフトの設定",
        "client_intro": "利用者がメールソフト（Thunderbird、Outlook、Apple メール、スマートフォン）に入力する設定です。多くのメールソフトはSRVレコードや自動設定から自動で見つけます。",
        "col_what": "項目",
        "col_server": "サーバ",
        "col_port": "ポート",
        "col_security": "暗号化",
        "imap": "受信メール（IMAP）",
        "pop3": "受信メール（POP3）",
        "smtp": "送信メール（SMTP）",
        "ssl": "SSL/TLS",
        "starttls": "STARTTLS",
        "username": "ユーザー名",
        "username_value": "メールアドレス全体（例：{example}）",
        "password": "パスワード",
        "password_value": "メールボックスのパスワード（通常のパスワード認証。通信は暗号化されます）",
        "accounts_heading": "メールボックス",
        "col_address_mail": "メールアドレス",
        "col_login": "入力するユーザー名",
        "no_client": "このサイトにはメールボックスがないため、メールソフトの設定はありません。",
        "Required": "必須",
        "Recommended": "推奨",
        "Optional": "任意",
        "Required_means": "ないとメールが拒否される、届かない、または送信できない",
        "Recommended_means": "配送・安全性・レポートが改善する。特別な理由がなければ登録する",
        "Optional_means": "便利機能：メールソフトが自動で設定される",
        "mx_fields": "優先度 {pref} ・ メールサーバ {host}",
        "srv_fields": "優先度 {prio} ・ 重み {weight} ・ ポート {port} ・ ターゲット {target}",
    },
}


_LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


@dataclass(frozen=True)
class SheetRecord:
    relative_name: str
    name: str
    type: str
    ttl: int
    value: str
    level: str  # Level value: the CSS class
    level_text: str
    purpose: str
    split: str  # TXT as quoted <=255-octet strings, one record; "" unless it needs more than one
    split_text: str
    fields: str  # MX/SRV parts as panels with separate fields ask for them; else ""
    dig: str


@dataclass(frozen=True)
class SheetZone:
    a_label: str
    unicode: str  # the same as a_label unless the zone is an IDN
    heading: str
    anchor: str
    count: str
    records: list[SheetRecord]
    push: str = ""  # with dns.targets: pushed to which target, or entered by hand; "" without targets


@dataclass(frozen=True)
class SheetPtr:
    address: str
    name: str
    target: str
    level_text: str
    dig: str


@dataclass(frozen=True)
class ClientRow:
    what: str
    server: str
    port: int
    security: str


@dataclass(frozen=True)
class Account:
    address: str  # Unicode form for reading
    login: str  # what is typed: the A-label form the server knows


@functools.lru_cache(maxsize=65536)
def unicode_name(a_label: str) -> str:
    """The Unicode form of a domain name; the name itself when it is not a valid IDN."""
    if "xn--" not in a_label:
        return a_label  # nothing to decode: IDNA's checks cost 0.1 ms a name
    try:
        return idna.decode(a_label)
    except (idna.IDNAError, UnicodeError):
        return a_label


def dig_line(record: Record) -> str:
    if record.type == "PTR":
        return f"dig +short -x {ptr_address(record)}"
    return f"dig +short {record.type} {record.name}"


def ptr_address(record: Record) -> str:
    """The address a PTR record's owner name (x.x.x.x.in-addr.arpa / nibbles.ip6.arpa) stands for."""
    return dns.reversename.to_address(dns.name.from_text(record.name))


def _fields(record: Record, t: dict[str, str]) -> str:
    parts = record.value.split(" ")
    if record.type == "MX" and len(parts) == 2:
        return t["mx_fields"].format(pref=parts[0], host=parts[1])
    if record.type == "SRV" and len(parts) == 4:
        return t["srv_fields"].format(prio=parts[0], weight=parts[1], port=parts[2], target=parts[3])
    return ""


def _record(record: Record, lang: str, t: dict[str, str]) -> SheetRecord:
    chunks = txt_strings(record.value) if record.type == "TXT" else []
    split = rdata(record) if len(chunks) > 1 else ""
    return SheetRecord(
        relative_name=record.relative_name,
        name=record.name,
        type=record.type,
        ttl=record.ttl,
        value=record.value,
        level=record.level.value,
        level_text=t[record.level.value],
        purpose=record.purpose.ja if lang == "ja" else record.purpose.en,
        split=split,
        split_text=t["split"].format(n=len(chunks), chunk=TXT_CHUNK) if split else "",
        fields=_fields(record, t),
        dig=dig_line(record),
    )


def _zones(rs: RecordSet, lang: str, t: dict[str, str]) -> list[SheetZone]:
    zones = sorted({r.zone for r in rs.records if not r.at_provider})
    out = []
    for zone in zones:
        # Required first, then recommended, then optional; the apex before other names.
        ordered = sorted((r for r in rs.in_zone(zone) if not r.at_provider), key=lambda r: (_LEVEL_RANK[r.level], r.name != zone))
        records = [_record(r, lang, t) for r in ordered]
        uni = unicode_name(zone)
        out.append(
            SheetZone(
                a_label=zone,
                unicode=uni,
                heading=t["domain_heading"].format(domain=uni),
                anchor="zone-" + zone,
                count=t["records_count"].format(n=len(records), s="s" * (len(records) != 1)),
                records=records,
            )
        )
    return out


def _ptrs(rs: RecordSet, t: dict[str, str]) -> list[SheetPtr]:
    ptrs = [r for r in rs.records if r.at_provider]
    rows = [SheetPtr(ptr_address(r), r.name, r.value, t[r.level.value], dig_line(r)) for r in ptrs]
    return sorted(rows, key=lambda p: (p.target, ":" in p.address, p.address))


def _client(site: Site, t: dict[str, str]) -> tuple[list[ClientRow], list[Account]]:
    found = site.mailbox_host
    if found is None:
        return [], []
    store = found[1]
    rows = []
    if store.has(Service.IMAP):
        rows.append(ClientRow(t["imap"], store.fqdn, 993, t["ssl"]))
    if store.has(Service.POP3):
        rows.append(ClientRow(t["pop3"], store.fqdn, 995, t["ssl"]))
    submission = site.hosts_with(Service.SUBMISSION)
    if submission:
        host = submission[0][1].fqdn
        rows.append(ClientRow(t["smtp"], host, 465, t["ssl"]))
        rows.append(ClientRow(t["smtp"], host, 587, t["starttls"]))
    accounts = [
        Account(f"{local}@{unicode_name(domain)}", f"{local}@{domain}") for domain in sorted(site.domains) for local in sorted(site.domains[domain].mailboxes)
    ]
    return rows, accounts


def sheet_html(site: Site, rs: RecordSet, lang: str = "en") -> str:
    """The whole sheet as one self-contained, printable HTML page (inline CSS, no network)."""
    if lang not in LANGS:
        raise ProvisionError(f"unknown sheet language {lang!r}: use one of {', '.join(LANGS)}")
    t = TEXT[lang]
    zones = _zones(rs, lang, t)
    ptr_push = ""
    if site.dns.targets:  # which zones push publishes (docs/dns-push.md); without targets the sheet is as before
        from provisioner.dns.push import pushed_zones

        pushed = pushed_zones(site, rs)
        zones = [dataclasses.replace(z, push=t["pushed"].format(target=pushed[z.a_label]) if z.a_label in pushed else t["by_hand"]) for z in zones]
        if site.dns.reverse is not None:
            ptr_push = t["pushed"].format(target=site.dns.reverse)
    client_rows, accounts = _client(site, t)
    example = accounts[0].login if accounts else "user@" + (sorted(site.domains)[0] if site.domains else "example.com")
    ports = sorted({row.port for row in client_rows})
    sep = "、" if lang == "ja" else ", "
    self_signed = t["self_signed"].format(ports=sep.join(map(str, ports))) if client_rows and site.tls.source is TlsSource.SELF_SIGNED else ""
    return render_template(
        "sheet.html.j2",
        lang=lang,
        t=t,
        title=t["title"].format(site=site.name),
        levels=[(level.value, t[level.value], t[level.value + "_means"]) for level in Level],
        zones=zones,
        ptrs=_ptrs(rs, t),
        ptr_push=ptr_push,
        client_rows=client_rows,
        accounts=accounts,
        username_value=t["username_value"].format(example=example),
        self_signed=self_signed,
    )


# ---------------------------------------------------------------------------- Chromium


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        raise ProvisionError(
            "the PDF sheet needs headless Chromium and Japanese fonts, which are not installed: "
            f"apt-get install -y {' '.join(DEBIAN_PACKAGES)} (the HTML sheet needs nothing)"
        )
    return found


def chromium_output(html: str, flag: str, out_name: str, extra: tuple[str, ...] = ()) -> bytes:
    """Open `html` in headless Chromium with `--flag=OUT` (print-to-pdf, screenshot); OUT's bytes.

    A fresh profile in a temp directory, no network services; everything is removed afterwards.
    """
    binary = _chromium()
    with tempfile.TemporaryDirectory(prefix="provision-sheet-") as tmp:
        tmpdir = Path(tmp)
        page = tmpdir / "sheet.html"
        page.write_text(html, encoding="utf-8")
        out = tmpdir / out_name
        profile = tmpdir / "profile"
        profile.mkdir()
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",  # run as root in CI/containers
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *extra,
            f"--{flag}={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, cwd=tmpdir, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ProvisionError(f"chromium did not finish the sheet within {CHROMIUM_TIMEOUT}s") from exc
        except OSError as exc:
            raise ProvisionError(f"cannot run {binary}: {exc}") from exc
        if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise ProvisionError(f"chromium could not produce {out_name} (exit {done.returncode}): {tail}")
        return out.read_bytes()


def sheet_pdf(html: str) -> bytes:
    """The sheet as an A4 PDF, via headless Chromium (Debian: chromium, fonts-noto-cjk)."""
    return chromium_output(html, "print-to-pdf", "sheet.pdf", ("--no-pdf-header-footer",))


def sheet_png(html: str, width: int = 1000, height: int = 1400) -> bytes:
    """A screenshot of the top of the sheet as shown on screen: for previews and tests."""
    return chromium_output(html, "screenshot", "sheet.png", (f"--window-size={width},{height}", "--hide-scrollbars"))
