"""Files that are not site files: a clear one-line error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.errors import SiteInvalid
from provisioner.site.validate import load_site


def only_problem(path: Path) -> str:
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def test_missing_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path / "nope.yaml") == f"{tmp_path}/nope.yaml:1:1: file not found (hint: check the path)"


def test_directory(tmp_path: Path) -> None:
    assert "is a directory, not a site file" in only_problem(tmp_path)


def test_empty_file(write_site) -> None:
    assert only_problem(write_site("")).endswith("1:1: the file is empty (hint: start from examples/all-in-one/site.yaml)")


def test_only_comments(write_site) -> None:
    assert "the file is empty" in only_problem(write_site("# nothing yet\n"))


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(b"version: 1\n\x00\x01\x02\xff")
    assert only_problem(path).endswith("2:1: binary data (NUL byte), not a YAML text file")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert "not valid UTF-8 text" in only_problem(path)


def test_yaml_syntax_error_has_position(write_site) -> None:
    message = only_problem(write_site("version: 1\nhosts: [a, b\nname: x\n"))
    assert ":3:" in message or ":2:" in message
    assert "YAML syntax error" in message


def test_top_level_list(write_site) -> None:
    assert "the top level must be a mapping" in only_problem(write_site("- a\n- b\n"))


def test_several_duplicates_reported_together(write_site) -> None:
    with pytest.raises(SiteInvalid) as caught:
        load_site(write_site("version: 1\nname: a\nname: b\nhosts: {}\nhosts: {}\n"))
    assert [(p.line, p.path) for p in caught.value.problems] == [(3, "name"), (5, "hosts")]


def test_yes_stays_a_string(write_site) -> None:
    """YAML 1.2: `name: yes` is the string yes, not a boolean (the 'Norway problem')."""
    with pytest.raises(SiteInvalid) as caught:
        load_site(write_site("version: 1\nname: yes\n"))
    assert all(p.path != "name" for p in caught.value.problems)


@pytest.mark.parametrize("target", ["missing.yaml", ".", "/dev/null"])
def test_cli_never_prints_a_traceback(tmp_path: Path, target: str) -> None:
    run = subprocess.run([sys.executable, "-m", "provisioner.cli", "validate", str(tmp_path / target)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[0].count(":") >= 3
