"""A site file arrives in pull requests: a problem line quoting its keys and values shows their
controls as escapes, one line per problem, whatever the key or value holds. `validate --format
json` carries the exact text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.errors import Problem, SiteInvalid
from provisioner.site.validate import load_site
from tests.conftest import MINIMAL

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}
# YAML double-quoted escapes (YAML 1.2 §5.7): the file is plain ASCII, the loaded key is not.
YAML_ESCAPES = {"\x1b": "\\e", "\r": "\\r", "\n": "\\n", "\t": "\\t", "\x0b": "\\v", "\x7f": "\\x7F", "\x85": "\\N", "\u2028": "\\L", "\u202e": "\\u202E", "\x07": "\\a"}


def yaml_quoted(text: str) -> str:
    return '"' + "".join(YAML_ESCAPES.get(c, c) for c in text) + '"'


def hidden_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in HIDDEN and c != "\n"]


def validate(path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "provisioner.cli", "validate", str(path), *args], capture_output=True, env=env, check=False, timeout=60)


def test_an_unknown_key_with_an_escape_shows_it_escaped(tmp_path: Path) -> None:
    key = "bo\x1b[8mgus\r\nsite.yaml: valid \u202e"
    site = tmp_path / "site.yaml"
    site.write_text(MINIMAL + f"{yaml_quoted(key)}: 1\n", encoding="ascii")

    done = validate(site)
    assert done.returncode == 1
    assert b"\x1b" not in done.stderr and b"\r" not in done.stderr and "\u202e".encode() not in done.stderr
    lines = done.stderr.decode().splitlines()
    assert lines[-1] == "1 problem found" and len(lines) == 2, lines
    assert lines[0].startswith(f"{site}:14:1: bo\\x1b[8mgus\\r\\nsite.yaml: valid <U+202E>") and "unknown key" in lines[0]

    report = json.loads(validate(site, "--format", "json").stdout)
    assert [p["path"] for p in report["problems"]] == [key]  # JSON: the exact key


_piece = st.one_of(st.sampled_from(sorted(YAML_ESCAPES)), st.sampled_from(["a", "[bold]", ":x:", "\\", " "]))
# At least one control or format character: without one, a value like "a" is simply valid.
hostile = st.tuples(st.lists(_piece, max_size=4), st.sampled_from(sorted(YAML_ESCAPES)), st.lists(_piece, max_size=4)).map(
    lambda parts: "".join(parts[0]) + parts[1] + "".join(parts[2])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile, where=st.sampled_from(["key", "name", "alias", "fqdn"]))
def test_every_problem_is_one_clean_line(write_site, text: str, where: str) -> None:
    """The class: a hostile string as a key or as a value, anywhere a problem quotes it."""
    quoted = yaml_quoted(text)
    document = {
        "key": MINIMAL + f"{quoted}: 1\n",
        "name": MINIMAL.replace("name: t\n", f"name: {quoted}\n"),
        "alias": MINIMAL.replace("aliases: {postmaster: alice}", f"aliases: {{postmaster: alice, {quoted}: alice}}"),
        "fqdn": MINIMAL.replace("fqdn: mx1.t.example", f"fqdn: {quoted}"),
    }[where]
    path = write_site(document)
    try:
        load_site(path)
    except SiteInvalid as exc:
        for problem in exc.problems:
            assert hidden_in(str(problem)) == [] and "\n" not in str(problem), str(problem)
    else:
        pytest.fail(f"a {where} of {text!r} was accepted")


def test_a_problem_keeps_its_exact_fields() -> None:
    problem = Problem("site.yaml", 3, 1, "bo\x1bgus", "unknown key", "did you mean \u202epolicy?")
    assert str(problem) == "site.yaml:3:1: bo\\x1bgus: unknown key (hint: did you mean <U+202E>policy?)"
    assert problem.path == "bo\x1bgus"  # what JSON shows
