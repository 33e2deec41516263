"""`render -o DIR` replaces only a build it wrote, and only the files that build listed (issue 11 item 8)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from provisioner.build import build
from provisioner.errors import ProvisionError
from provisioner.render.tree import HostTree
from provisioner.render.writer import MANIFEST, MARKER, MARKER_TEXT, _remove, check_output, write_build
from tests.conftest import EXAMPLES

ENV = {"SMARTHOST_PASSWORD": "example-smarthost-secret"}


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every name under root, as lstat sees it: file bytes, link targets, directories."""
    seen: dict[str, tuple[str, bytes | str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = ("dir", "")
            else:
                seen[rel] = ("file", path.read_bytes())
    return seen


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    return tmp_path / "site" / "site.yaml"


def small_tree() -> dict[str, HostTree]:
    tree = HostTree("mx1")
    tree.add("etc/postfix/main.cf", b"myhostname = mx1.example\n", 0o644)
    tree.add("etc/postfix/sasl_passwd", b"[smtp.example]:587 user:pw\n", 0o600, secret=True)
    return {"mx1": tree}


def test_web_app_with_its_own_manifest_json_is_refused_and_untouched(site: Path, tmp_path: Path) -> None:
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "My App", "version": 1, "hosts": {}, "files": []}')
    (app / "src/app.js").write_text("console.log('hi')\n")
    before = snapshot(app)
    with pytest.raises(ProvisionError, match=f"not a provisioner build \\(no {MARKER}\\)"):
        build(site, app, None, ENV)
    assert snapshot(app) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".webapp")]  # no staging left


@pytest.mark.parametrize("where", ["site dir", "repository root", "state dir", "inside state", "holds state"])
def test_an_output_that_is_or_holds_the_site_or_its_state_is_refused_before_anything_is_made(site: Path, tmp_path: Path, where: str) -> None:
    site_dir = site.parent
    (tmp_path / ".git").mkdir()  # tmp_path plays the repository root holding the site
    state = tmp_path / "elsewhere" / "state" if where == "holds state" else None
    out = {
        "site dir": site_dir,
        "repository root": tmp_path,
        "state dir": site_dir / "state",
        "inside state": site_dir / "state" / "build",
        "holds state": tmp_path / "elsewhere",
    }[where]
    # Even a directory that looks like a build of ours (marker, empty manifest) is not replaced.
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_bytes(MARKER_TEXT)
    (out / MANIFEST).write_text('{"version": 2, "hosts": {}, "files": []}')
    before = snapshot(tmp_path)
    with pytest.raises(ProvisionError, match="is or holds|is inside the state directory"):
        build(site, out, state, ENV)
    assert snapshot(tmp_path) == before  # no key made, nothing removed


def test_cli_render_into_the_site_directory_is_refused(site: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "provisioner.cli", "render", "site.yaml", "-o", "."],
        cwd=site.parent,
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 1 and "the site file's directory" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in site.parent.iterdir()) == ["secrets", "site.yaml"]


def test_root_home_and_a_symlinked_output_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProvisionError, match="root directory"):
        check_output(Path("/"))
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for out in (home, home.parent):
        with pytest.raises(ProvisionError, match="home directory"):
            check_output(out)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(ProvisionError, match="symbolic link"):
        check_output(tmp_path / "link")
    check_output(home / "build")  # a directory of its own is fine


def test_a_file_the_build_did_not_write_survives_and_is_named(tmp_path: Path) -> None:
    out = tmp_path / "build"
    write_build(out, small_tree())
    (out / "notes.txt").write_text("mine")
    (out / "mx1/etc/postfix/local.cf").write_text("mine too")
    (out / "mx1/etc/empty-dir-of-mine").mkdir()
    before = snapshot(out)
    with pytest.raises(
        ProvisionError, match=r"holds 3 names the previous build did not write \(mx1/etc/empty-dir-of-mine/, mx1/etc/postfix/local.cf, notes.txt\)"
    ):
        write_build(out, small_tree())
    assert snapshot(out) == before


def test_rerender_removes_exactly_what_the_old_manifest_listed(tmp_path: Path) -> None:
    out = tmp_path / "build"
    trees = small_tree()
    trees["mx2"] = HostTree("mx2")
    trees["mx2"].add("etc/postfix/main.cf", b"x\n", 0o644)
    write_build(out, trees, {"dns/example.zone": b"zone\n"})
    (out / ".bundles").mkdir()
    (out / ".bundles/mx2.tar").write_bytes(b"tar")  # what `plan` adds: ours too
    del trees["mx2"]
    write_build(out, trees)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()) == [
        ".hosts/mx1.json",  # mx2's own part went with it
        ".provisioner-build",
        ".secret-digest-keys.json",
        "manifest.json",
        "mx1/etc/postfix/main.cf",
        "mx1/etc/postfix/sasl_passwd",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name != "build"]  # old build and staging gone


def test_symlinks_in_the_old_build_are_removed_as_names_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "main.cf").write_bytes(b"myhostname = mx1.example\n")  # the same bytes as the listed file
    victim.joinpath("main.cf").chmod(0o644)
    out = tmp_path / "build"
    write_build(out, small_tree())
    listed = out / "mx1/etc/postfix/main.cf"
    listed.unlink()
    listed.symlink_to(victim / "main.cf")
    write_build(out, small_tree())
    assert not listed.is_symlink() and listed.stat().st_ino != (victim / "main.cf").stat().st_ino  # written, not linked to the target
    assert (victim / "main.cf").read_bytes() == b"myhostname = mx1.example\n"

    # A directory of the old build that became a link is refused up front, and removal never
    # descends through one even if it appears after that check.
    postfix = out / "mx1/etc/postfix"
    shutil.rmtree(postfix)
    postfix.symlink_to(victim, target_is_directory=True)
    with pytest.raises(ProvisionError, match="mx1/etc/postfix"):
        write_build(out, small_tree())
    _remove(out, ["mx1/etc/postfix/main.cf", "mx1/etc/postfix/sasl_passwd", MANIFEST])
    assert (victim / "main.cf").exists() and postfix.is_symlink()


HOSTILE_MANIFESTS = {
    "a web app's": {"name": "app", "icons": []},
    "an older provision's": {"version": 1, "hosts": {}, "files": []},
    "parent in a path": {"version": 2, "hosts": {}, "files": [{"path": "../victim/file", "sha256": "0" * 64}]},
    "absolute path": {"version": 2, "hosts": {}, "files": [{"path": "/victim/file", "sha256": "0" * 64}]},
    "dot-dot host": {"version": 2, "hosts": {"..": {"files": [], "postfix_tables": []}}, "files": []},
    "host path escapes": {
        "version": 2,
        "hosts": {"mx1": {"postfix_tables": [], "files": [{"path": "/../../victim/file", "sha256": "0" * 64, "mode": "0644"}]}},
        "files": [],
    },
    "no digest": {"version": 2, "hosts": {}, "files": [{"path": "notes.txt"}]},
    "extra key": {"version": 2, "hosts": {}, "files": [], "delete": ["x"]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MANIFESTS))
def test_a_marker_with_a_manifest_not_of_ours_is_not_a_build(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_bytes(MARKER_TEXT)
    (out / MANIFEST).write_text(json.dumps(HOSTILE_MANIFESTS[name]))
    (out / "notes.txt").write_text("keep")
    before = snapshot(tmp_path)
    with pytest.raises(ProvisionError, match="not a provisioner build"):
        write_build(out, small_tree())
    assert snapshot(tmp_path) == before


def test_a_marker_of_someone_else_is_not_ours(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_build(out, small_tree())
    (out / MARKER).write_text("provisioner\n")
    with pytest.raises(ProvisionError, match=f"{MARKER} is not ours"):
        write_build(out, small_tree())


def test_an_empty_directory_is_filled(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_build(out, small_tree())
    assert (out / MARKER).read_bytes() == MARKER_TEXT


def test_an_output_under_a_file_or_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProvisionError, match="cannot write the build directory .*Not a directory"):
        write_build(tmp_path / "file" / "build", small_tree())
    with pytest.raises(ProvisionError, match="exists and is not a directory"):
        write_build(tmp_path / "file", small_tree())
    assert (tmp_path / "file").read_text() == "x"
