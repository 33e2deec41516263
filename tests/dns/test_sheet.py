"""The printable DNS sheet: every value whole and copyable, both languages, printed by real Chromium.

Records come from the bundled examples the way `provision render` makes them (fixed day, real
keys). Chromium, fonts-noto-cjk and poppler-utils are Debian packages installed by tests/run.sh.
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest

from provisioner.dns import sheet
from provisioner.dns.formats import txt_strings
from provisioner.dns.records import RecordSet, site_records
from provisioner.dns.sheet import sheet_html, sheet_pdf, sheet_png
from provisioner.errors import ProvisionError
from provisioner.keys.store import ensure_keys
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

EXAMPLE_NAMES = ["all-in-one", "multi-host"]
LANGS = ["en", "ja"]
JA_HEADINGS = ["登録するレコード", "逆引き（PTR）：ホスティング事業者への依頼", "メールソフトの設定", "重要度"]
EN_HEADINGS = ["Records to enter", "Reverse DNS (PTR): ask your hosting provider", "Settings for mail programs", "Levels"]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Site, RecordSet]]:
    out = {}
    for name in EXAMPLE_NAMES:
        site = load_site(EXAMPLES / name / "site.yaml").site
        state = tmp_path_factory.mktemp(name) / "state"
        ks, _ = ensure_keys(site, state, today=FIXED_DAY, workers=1)
        out[name] = (site, site_records(site, ks, today=FIXED_DAY))
    return out


@pytest.fixture(scope="module")
def pages(examples) -> dict[tuple[str, str], str]:
    return {(name, lang): sheet_html(site, rs, lang) for name, (site, rs) in examples.items() for lang in LANGS}


CASES = [(name, lang) for name in EXAMPLE_NAMES for lang in LANGS]


def without_name_markup(page: str) -> str:
    """A page with the line-break markup in DNS names removed (<wbr> after dots, nowrap labels)."""
    return re.sub(r'<span class="lbl">([^<]*)</span>', r"\1", page.replace("<wbr>", ""))


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_every_record_value_whole_in_one_copyable_element(examples, pages, name: str, lang: str) -> None:
    _, rs = examples[name]
    page = pages[name, lang]
    text = html.unescape(page)
    copyable = {html.unescape(v) for v in re.findall(r'<code class="copy value">([^<]*)</code>', page)}
    for r in rs.records:
        assert r.value in text, r
        assert r.value in copyable, r  # the logical value alone in one element: no inserted space or break
    # The CSS that makes a long value copy cleanly and wrap without changing it.
    assert re.search(r"\.copy \{[^}]*user-select: all;[^}]*word-break: break-all;", page)
    assert "font-family: var(--mono)" in page


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_names_types_ttl_and_dig_line_for_every_record(examples, pages, name: str, lang: str) -> None:
    _, rs = examples[name]
    text = without_name_markup(html.unescape(pages[name, lang]))
    for r in rs.records:
        if r.at_provider:
            continue
        row = f'<td class="name">{r.relative_name}</td><td class="full">{r.name}</td><td class="type">{r.type}</td><td class="mono">{r.ttl}</td>'
        assert row in text, r
        assert f"dig +short {r.type} {r.name}" in text, r
        assert (r.purpose.ja if lang == "ja" else r.purpose.en) in text, r


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_long_txt_shown_split_into_255_octet_strings(examples, pages, name: str, lang: str) -> None:
    _, rs = examples[name]
    text = html.unescape(pages[name, lang])
    long_txt = [r for r in rs.records if r.type == "TXT" and len(r.value.encode()) > 255]
    assert long_txt, "the examples have 2048-bit DKIM keys"
    for r in long_txt:
        chunks = txt_strings(r.value)
        assert len(chunks) == 2
        assert " ".join(f'"{c}"' for c in chunks) in text, r
    label = "引用符付きの2個の文字列" if lang == "ja" else "As 2 quoted strings"
    assert label in text


@pytest.mark.parametrize("lang", LANGS)
def test_idn_domain_in_unicode_and_a_label(pages, lang: str) -> None:
    text = html.unescape(pages["multi-host", lang])
    heading = re.search(r"<h2>([^\n]*例え\.jp[^\n]*)</h2>", text)
    assert heading, "the IDN domain has its own heading"
    assert "xn--r8jz45g.jp" in heading.group(1)
    assert "taro@例え.jp" in text and "taro@xn--r8jz45g.jp" in text  # mailbox address and what is typed


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_japanese_throughout_and_english_throughout(examples, pages, name: str) -> None:
    _, rs = examples[name]
    ja, en = html.unescape(pages[name, "ja"]), html.unescape(pages[name, "en"])
    assert '<html lang="ja">' in ja and '<html lang="en">' in en
    assert "Noto Sans CJK JP" in ja and "IPAexGothic" in ja
    for heading in JA_HEADINGS:
        assert heading in ja and heading not in en
    for heading in EN_HEADINGS:
        assert heading in en and heading not in ja
    for word in ("必須", "推奨", "任意"):
        assert word in ja
    for record in (r for r in rs.records if not r.at_provider):  # PTR rows show no purpose
        assert record.purpose.ja in ja and record.purpose.en not in ja
        assert record.purpose.en in en and record.purpose.ja not in en
    # English page: no Japanese outside the IDN domain's own name.
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", en.replace("例え", ""))


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_self_contained_no_network_loads(pages, name: str, lang: str) -> None:
    page = pages[name, lang]
    assert "<style>" in page and "@page { size: A4;" in page
    for pattern in (r"<link\b", r"<script\b", r"<img\b", r"<iframe\b", r"\bsrc\s*=", r"url\(", r"@import", r"href\s*=\s*[\"']?https?:"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_deterministic(examples, pages, name: str, lang: str) -> None:
    site, rs = examples[name]
    assert sheet_html(site, rs, lang) == pages[name, lang]


def test_ptr_requests_and_mail_program_settings(pages) -> None:
    text = without_name_markup(html.unescape(pages["multi-host", "en"]))
    ptr = text[text.index("Reverse DNS (PTR): ask your hosting provider</h2>") :]
    for address, reverse, target in [
        ("192.0.2.10", "10.2.0.192.in-addr.arpa", "mx1.acme.example."),
        ("2001:db8::10", "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "mx1.acme.example."),
        ("192.0.2.20", "20.2.0.192.in-addr.arpa", "mx2.acme.example."),
        ("192.0.2.11", "11.2.0.192.in-addr.arpa", "out1.acme.example."),
    ]:
        assert f'<td class="mono">{address}</td><td class="full">{reverse}</td><td><code class="copy value">{target}</code></td>' in ptr
        assert f"dig +short -x {address}" in ptr
    client = text[text.index("Settings for mail programs</h2>") :]
    for what, port, security in [("IMAP", 993, "SSL/TLS"), ("POP3", 995, "SSL/TLS"), ("SMTP", 465, "SSL/TLS"), ("SMTP", 587, "STARTTLS")]:
        assert re.search(rf"\({what}\)</td><td><code class=\"copy\">mx1\.acme\.example</code></td><td class=\"mono\">{port}</td><td>{security}</td>", client)
    assert "the full email address, e.g. alice@acme.example" in client
    assert "the mailbox password" in client
    ja = html.unescape(pages["all-in-one", "ja"])
    assert '受信メール（IMAP）</td><td><code class="copy">mail.smallco.example</code></td><td class="mono">993</td><td>SSL/TLS</td>' in ja
    assert "メールアドレス全体（例：alice@smallco.example）" in ja


def test_unknown_language_is_a_user_error(examples) -> None:
    site, rs = examples["all-in-one"]
    with pytest.raises(ProvisionError, match="unknown sheet language 'de'"):
        sheet_html(site, rs, "de")


def test_missing_chromium_names_the_debian_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sheet, "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(ProvisionError, match="apt-get install -y chromium fonts-noto-cjk"):
        sheet_pdf("<!DOCTYPE html><html></html>")


# ---------------------------------------------------------------------------- real Chromium


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE).group(1))


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_chromium_prints_pdf_and_png(pages, tmp_path: Path, name: str, lang: str) -> None:
    pdf = sheet_pdf(pages[name, lang])
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    count = pdf_pages(path)
    assert count > 1 if name == "multi-host" else count >= 1
    png = sheet_png(pages[name, lang])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True).stdout
    headings = JA_HEADINGS if lang == "ja" else EN_HEADINGS
    for heading in headings:
        assert heading in text, heading  # text (and, for ja, the CJK font) made it into the PDF
    if name == "multi-host":
        assert "例え.jp" in text
