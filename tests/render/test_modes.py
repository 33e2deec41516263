"""Every file and directory gets the mode we mean, whatever the umask; no link planted at a
temporary name is followed (issue 11 item 10).

Intended modes (docs/apply.md, docs/keys.md): in the state directory every directory is 0700,
private keys and the digest key 0600, public halves and dkim.yaml 0644; in the build every
directory is 0755 and every file has the mode its manifest entry gives (0600 / 0640 for
secrets), the digest keys 0600. On the host the role's stage script makes directories 0755
and gives each file the staged owner and mode before its first byte.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.render.test_secret_digests import stage_script

RUN = """
import os, sys
from pathlib import Path
os.umask(int(sys.argv[1], 8))
from provisioner.build import build
from provisioner.keys.store import ensure_keys
from provisioner.site.validate import load_site
site, out, state, keys_only = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
ensure_keys(load_site(site).site, keys_only, workers=1)  # `provision keys`
build(site, out, state, {"SMARTHOST_PASSWORD": "x"})
for pub in state.glob("dkim/*/*.pub"):
    pub.unlink()  # re-made from the private key by the records (keys.public's cache)
build(site, out, state, {"SMARTHOST_PASSWORD": "y"})  # a re-render: links, new files, removal
assert len(list(state.glob("dkim/*/*.pub"))) == len(list(state.glob("dkim/*/*.pem")))
"""


def modes(root: Path) -> dict[str, int]:
    """Relative path -> st_mode (lstat) of everything under root, root itself as '.'."""
    found = {".": os.lstat(root).st_mode}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = os.lstat(path).st_mode
    return found


@pytest.mark.parametrize("umask", ["000", "077", "022"])
def test_render_and_keys_make_exactly_the_modes_we_intend_under_any_umask(tmp_path: Path, umask: str) -> None:
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    out, state, keys_only = tmp_path / "new" / "build", tmp_path / "deep" / "state", tmp_path / "keys-state"
    result = subprocess.run(
        [sys.executable, "-c", RUN, umask, str(tmp_path / "site/site.yaml"), str(out), str(state), str(keys_only)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    for state_root in (state, keys_only):
        for rel, mode in modes(state_root).items():
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), rel
            private = (rel.startswith("dkim/") and rel.endswith(".pem")) or rel.endswith("/key.pem") or rel == "secret-digest.key"
            want = 0o700 if stat.S_ISDIR(mode) else 0o600 if private else 0o644
            assert stat.S_IMODE(mode) == want, (state_root.name, rel, oct(mode))
    assert stat.S_IMODE(os.stat(tmp_path / "deep").st_mode) == 0o700  # a missing parent of the state too
    assert (state / "secret-digest.key").exists() and list(state.glob("tls/*/key.pem"))

    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f"{host}{f['path']}": int(f["mode"], 8) for host, entry in manifest["hosts"].items() for f in entry["files"]}
    listed |= {f["path"]: 0o644 for f in manifest["files"]} | {"manifest.json": 0o644, ".provisioner-build": 0o644, ".secret-digest-keys.json": 0o600}
    listed |= {f".hosts/{host}.json": 0o600 for host in manifest["hosts"]}  # each host's own part, with its digest key
    seen = modes(out)
    assert {rel for rel, mode in seen.items() if not stat.S_ISDIR(mode)} == set(listed)
    for rel, mode in seen.items():
        assert stat.S_IMODE(mode) == (0o755 if stat.S_ISDIR(mode) else listed[rel]), (rel, oct(mode))
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o755
    assert any(m == 0o600 for m in listed.values()) and any(m == 0o640 for m in listed.values())
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["build"]  # no staging or old build left


def staged_tree(tmp_path: Path, live: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    """A staging tree as `stage` leaves it: the live path under the staging directory."""
    staged = tmp_path / "staged"
    for rel, (content, mode) in files.items():
        path = staged / str(live / rel).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    return staged


def test_stage_install_ignores_a_link_planted_at_the_temporary_name_and_sets_modes_under_umask_000(tmp_path: Path) -> None:
    stage = stage_script()
    live = tmp_path / "live"
    (live / "etc/postfix").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    victim.chmod(0o644)
    for name in (".sasl_passwd.provisioner-new", ".sasl_passwd.provisioner-"):  # the old predictable name, and the new prefix
        (live / "etc/postfix" / name).symlink_to(victim)
    staged = staged_tree(tmp_path, live, {"etc/postfix/sasl_passwd": (b"[smtp]:587 u:pw\n", 0o600), "etc/opendkim/keys/example.pem": (b"KEY\n", 0o640)})
    old = os.umask(0)
    try:
        report = stage.install(str(staged), {"reload_on": {"postfix": [str(live / "etc/postfix") + "/"]}})
    finally:
        os.umask(old)
    assert victim.read_text() == "root's file" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    sasl = live / "etc/postfix/sasl_passwd"
    assert sasl.read_bytes() == b"[smtp]:587 u:pw\n" and stat.S_IMODE(os.lstat(sasl).st_mode) == 0o600 and not sasl.is_symlink()
    key = live / "etc/opendkim/keys/example.pem"
    assert stat.S_IMODE(os.lstat(key).st_mode) == 0o640
    for directory in (live / "etc/opendkim", live / "etc/opendkim/keys"):  # made by install
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert sorted(report["changed"]) == sorted([str(key), str(sasl)]) and report["reload"] == ["postfix"]
    left = sorted(p.name for p in (live / "etc/postfix").iterdir())
    assert left == [".sasl_passwd.provisioner-", ".sasl_passwd.provisioner-new", "sasl_passwd"]  # the planted links, nothing of ours


@pytest.mark.skipif(os.geteuid() != 0, reason="stage gives files to root, as on a host")
def test_stage_extracts_with_directories_0755_under_umask_000(tmp_path: Path) -> None:
    import io
    import tarfile

    stage = stage_script()
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        info = tarfile.TarInfo("etc/opendkim/keys/example.pem")
        info.size, info.mode = 4, 0o600
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(b"KEY\n"))
    old = os.umask(0)
    try:
        stage.stage(str(bundle), str(tmp_path / "staged"))
    finally:
        os.umask(old)
    staged = tmp_path / "staged"
    assert {str(p.relative_to(staged)): stat.S_IMODE(os.lstat(p).st_mode) for p in [staged, *staged.rglob("*")]} == {
        ".": 0o700,
        "etc": 0o755,
        "etc/opendkim": 0o755,
        "etc/opendkim/keys": 0o755,
        "etc/opendkim/keys/example.pem": 0o600,
    }
