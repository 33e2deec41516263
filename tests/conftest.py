"""Shared fixtures: sites written to temp files, a fixed clock for selector names."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXED_DAY = dt.date(2026, 11, 1)

ALICE_HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$4UpCNAmRJ40A4SZ+1IFVnw$0VMvaY6Hlpx3bUYZQxqT3lc27nod6JEAjo263ZDUq/A"
ALICE_PASSWORD = "alice-example-pw"

# A small valid site; tests change one thing at a time.
MINIMAL = f"""\
version: 1
name: t
hosts:
  mx1:
    fqdn: mx1.t.example
    ipv4: [192.0.2.10]
    services: [mx, submission, imap]
    mx_priority: 10
domains:
  t.example:
    mailboxes:
      alice: {{password: "{ALICE_HASH}"}}
    aliases: {{postmaster: alice}}
"""


@pytest.fixture
def write_site(tmp_path: Path):
    def write(text: str, name: str = "site.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _cli_consoles_follow_the_current_streams():
    """The CLI's consoles write to whatever sys.stdout/stderr is at print time (CliRunner swaps
    them). A test that pinned one to a stream of its own would make later in-process CLI tests
    read an empty output: say which test did it."""
    yield
    import sys

    cli = sys.modules.get("provisioner.cli")
    if cli is not None:
        pinned = [name for name in ("out", "err") if getattr(cli, name)._file is not None]
        assert not pinned, f"provisioner.cli.{pinned} left writing to a fixed stream (patch `_file`, not `file`)"
