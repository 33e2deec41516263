"""The sheet's layout as real Chromium lays it out at the printed page's width: level badges stay
inside their column, names break only at dots (never inside a label), the PDF says where to copy
values from, client settings warn about a self-signed certificate, and notes for the site author
stay off the sheet (they go to the terminal and records.json)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from provisioner.dns.records import RecordSet, site_records
from provisioner.dns.sheet import TEXT, _chromium, sheet_html, sheet_pdf
from provisioner.keys.store import ensure_keys
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

CASES = [(name, lang) for name in ("all-in-one", "multi-host") for lang in ("en", "ja")]

# Runs in the page after layout; writes what is wrong into <body data-layout="[...]">.
PROBE = """<script>
addEventListener('load', () => {
  const bad = [];
  for (const badge of document.querySelectorAll('.level')) {
    const cell = badge.closest('td').getBoundingClientRect(), box = badge.getBoundingClientRect();
    if (box.right > cell.right - 1 || box.left < cell.left || badge.scrollWidth > badge.clientWidth) bad.push('badge outside its cell: ' + badge.textContent);
  }
  for (const label of document.querySelectorAll('.lbl')) {
    if (label.getClientRects().length !== 1) bad.push('label broken: ' + label.textContent);
    if (label.getBoundingClientRect().right > label.closest('td').getBoundingClientRect().right) bad.push('label overflows: ' + label.textContent);
  }
  document.body.setAttribute('data-layout', JSON.stringify(bad));
});
</script>"""
PRINT_WIDTH = "<style>body { max-width: 188mm !important; padding: 0 !important; }</style>"  # A4 less the @page margins


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Site, RecordSet]]:
    out = {}
    for name in ("all-in-one", "multi-host"):
        site = load_site(EXAMPLES / name / "site.yaml").site
        ks, _ = ensure_keys(site, tmp_path_factory.mktemp(name) / "state", today=FIXED_DAY, workers=1)
        out[name] = (site, site_records(site, ks, today=FIXED_DAY))
    return out


def laid_out_problems(page: str, tmp_path: Path) -> list[str]:
    probe = page.replace("</head>", PRINT_WIDTH + "</head>").replace("</body>", PROBE + "</body>")
    path = tmp_path / "probe.html"
    path.write_text(probe, encoding="utf-8")
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1200", "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'data-layout="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_badges_inside_their_column_and_names_break_only_at_dots(examples, tmp_path: Path, name: str, lang: str) -> None:
    site, rs = examples[name]
    page = sheet_html(site, rs, lang)
    assert page.count('class="lbl"') > 50 and ".<wbr>" in page
    assert laid_out_problems(page, tmp_path) == []


def test_the_probe_sees_a_badge_that_overlaps_and_a_label_broken_mid_word(examples, tmp_path: Path) -> None:
    """The layout test can fail: the old column widths and a narrow name column are caught."""
    site, rs = examples["multi-host"]
    page = sheet_html(site, rs, "en")
    page = page.replace('<col style="width:14%"><col style="width:31%">', '<col style="width:8%"><col style="width:37%">')
    page = page.replace(".lbl { white-space: nowrap; }", ".lbl { white-space: normal; } .name, .full { word-break: break-all; }")
    problems = laid_out_problems(page, tmp_path)
    assert any(p.startswith("badge outside its cell: Recommended") for p in problems)
    assert any(p.startswith("label broken: ") for p in problems)


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_no_author_notes_on_the_sheet(examples, name: str, lang: str) -> None:
    site, rs = examples[name]
    text = html.unescape(sheet_html(site, rs, lang))
    assert rs.notes, "the examples have notes (smarthost SPF include, MTA-STS policy, DMARC reports)"
    for note in rs.notes:
        assert note.en not in text and note.ja not in text
    assert "policy.spf.include" not in text and "mta-sts.txt" not in text


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_pdf_says_copy_from_the_html_and_warns_about_self_signed(examples, tmp_path: Path, lang: str) -> None:
    site, rs = examples["multi-host"]
    assert site.tls.source.value == "self-signed"
    page = sheet_html(site, rs, lang)
    assert '<p class="print-only warn">' in page and ".print-only { display: none; }" in page  # on screen the HTML is the source
    client = html.unescape(page[page.index('<section class="client">') :])
    ports = "、".join(["465", "587", "993", "995"]) if lang == "ja" else "465, 587, 993, 995"
    assert TEXT[lang]["self_signed"].format(ports=ports) in client
    path = tmp_path / "sheet.pdf"
    path.write_bytes(sheet_pdf(page))
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", "sheet.html") in flat and ("HTML page" in text.replace("\n", " ") or "HTML版" in flat)
    assert ("self-signed" in text) if lang == "en" else ("自己署名証明書" in flat)


def test_no_self_signed_warning_with_certificate_files(examples) -> None:
    site, rs = examples["all-in-one"]
    files = site.model_copy(update={"tls": site.tls.model_copy(update={"source": type(site.tls.source)("files")})})
    page = sheet_html(files, rs, "en")
    assert "self-signed" not in page and "self-signed" in sheet_html(site, rs, "en")
