"""DNS records to publish: one list (records.py), many views (formats.py, sheet.py)."""

from __future__ import annotations

import json

from provisioner.dns.formats import json_doc, octodns_zone, zone_text
from provisioner.dns.records import Note, RecordSet
from provisioner.errors import ProvisionError
from provisioner.site.model import Site

FORMATS = ("zone", "json", "octodns", "sheet", "pdf")


def dns_output(site: Site, rs: RecordSet, fmt: str, lang: str = "en", standalone: bool = False) -> bytes:
    """One output of the record list, as bytes (zone and octodns: every zone, one after another)."""
    if fmt == "zone":
        return "\n".join(zone_text(rs, z, standalone=standalone) for z in rs.zones()).encode()
    if fmt == "json":
        return (json.dumps(json_doc(rs), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    if fmt == "octodns":
        return "".join(f"# {z}.yaml\n{octodns_zone(rs, z)}" for z in rs.zones()).encode()
    if fmt in ("sheet", "pdf"):
        from provisioner.dns.sheet import sheet_html, sheet_pdf

        html = sheet_html(site, rs, lang)
        return html.encode() if fmt == "sheet" else sheet_pdf(html)
    raise ProvisionError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# A printed sheet is for a person entering records by hand: beyond this many domains it is
# thousands of pages and costs most of the render, so render leaves it to `provision dns`.
SHEET_MAX_DOMAINS = 100


def dns_directory(site: Site, rs: RecordSet) -> dict[str, bytes]:
    """Everything `render` writes under build/dns/: zones, records.json, octodns/, sheets, files to serve."""
    from provisioner.dns.formats import record_files
    from provisioner.dns.sheet import sheet_html

    files = record_files(site, rs)
    if len(site.domains) <= SHEET_MAX_DOMAINS:
        files["dns/sheet.html"] = sheet_html(site, rs, "en").encode()
        files["dns/sheet.ja.html"] = sheet_html(site, rs, "ja").encode()
    return files


NOTES_SHOWN = 20  # note lines on the terminal; records.json has every note


def note_warnings(notes: list[Note], where: str) -> list[str]:
    """The notes for the site author as terminal lines (`render` and `dns` print them as warnings).

    One line per distinct text, naming its domains (the first three and a count): a smarthost
    SPF note for 5,000 domains is one line. At most NOTES_SHOWN lines; `where` names the full list.
    """
    by_text: dict[str, list[str]] = {}
    for note in notes:
        by_text.setdefault(note.en, []).append(note.domain)
    lines = []
    for text, domains in by_text.items():
        named = ", ".join(domains[:3]) + (f" and {len(domains) - 3} more domains" if len(domains) > 3 else "")
        lines.append(f"{named}: {text}")
    if len(lines) > NOTES_SHOWN:
        lines = [*lines[:NOTES_SHOWN], f"{len(lines) - NOTES_SHOWN} more notes in {where}"]
    return lines
