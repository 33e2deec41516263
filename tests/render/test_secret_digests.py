"""No plain digest of a secret file anywhere others can read it (issue 11 item 9).

A sha256 of sasl_passwd, whose other bytes are known, lets anyone who reads manifest.json (0644)
or a CI log of `render --format json` test password guesses offline. Secret files carry an
HMAC under a key from the state directory instead; the role compares a host's live secrets
with its own key, and plan still says which secret changed, by path.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from provisioner.apply.bundle import write_bundles
from provisioner.apply.plan import _summarise
from provisioner.build import build
from provisioner.keys.digest import KEY_FILE
from provisioner.render.writer import DIGEST_KEYS
from tests.conftest import EXAMPLES, ROOT
from tests.loaders import role_module

ENV = {"SMARTHOST_PASSWORD": "example-smarthost-secret"}
def stage_script() -> ModuleType:
    return role_module("mailhost_stage")


def plain_digests(content: bytes) -> set[str]:
    """Unsalted digests someone could test guesses against, hex and upper-case hex."""
    found = set()
    for name in ("sha256", "sha1", "md5", "sha512", "blake2b"):
        digest = hashlib.new(name, content).hexdigest()
        found |= {digest, digest.upper()}
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[tuple[str, str], bytes], str]:
    base = tmp_path_factory.mktemp("digests")
    shutil.copytree(EXAMPLES / "multi-host", base / "site", ignore=shutil.ignore_patterns("state", "build"))
    site = base / "site/site.yaml"
    out = base / "build"
    result = build(site, out, None, ENV)
    secrets = {(host, "/" + f.path): f.content for host, tree in result.trees.items() for f in tree.files.values() if f.secret}
    assert ("out1", "/etc/postfix/sasl_passwd") in secrets and len(secrets) > 5  # keys, users, sasl_passwd
    cli = subprocess.run(
        [sys.executable, "-m", "provisioner.cli", "render", str(site), "-o", str(base / "build-cli"), "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, "NO_COLOR": "1"},
        check=True,
    )
    return site, out, secrets, cli.stdout


def test_no_plain_digest_of_a_secret_in_the_manifest_the_json_output_or_the_bundles(rendered) -> None:
    site, out, secrets, cli_json = rendered
    bundles = b"".join(path.read_bytes() for path in write_bundles(out).values())
    readable = {"manifest.json": (out / "manifest.json").read_text(), "render --format json": cli_json, "bundles": bundles.decode("latin-1")}
    for (host, path), content in secrets.items():
        for where, text in readable.items():
            leaked = [d for d in plain_digests(content) if d in text]
            assert not leaked, f"{where} carries a plain digest of {host}:{path}"
    manifest = json.loads(readable["manifest.json"])
    assert json.loads(cli_json)["hosts"] == manifest["hosts"]
    for host, entry in manifest["hosts"].items():
        for file in entry["files"]:
            assert ("hmac_sha256" in file) == file["secret"] == ((host, file["path"]) in secrets) != ("sha256" in file)


def test_the_digest_key_is_private_made_once_and_the_manifest_is_deterministic(rendered) -> None:
    site, out, _, _ = rendered
    key_file = site.parent / "state" / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600 and (out / DIGEST_KEYS).stat().st_mode & 0o777 == 0o600
    key, manifest = key_file.read_bytes(), (out / "manifest.json").read_bytes()
    build(site, out, None, ENV)
    assert key_file.read_bytes() == key and (out / "manifest.json").read_bytes() == manifest


def test_another_state_gives_other_digests(rendered, tmp_path: Path) -> None:
    site, out, _, _ = rendered
    other = build(site, tmp_path / "b", tmp_path / "state", ENV).manifest
    mine = json.loads((out / "manifest.json").read_text())
    pick = lambda m: [f.get("hmac_sha256") for f in m["hosts"]["out1"]["files"] if f["secret"]]  # noqa: E731
    assert pick(other) != pick(mine)


def test_bundle_refuses_a_secret_edited_after_render(rendered, tmp_path: Path) -> None:
    from provisioner.errors import ProvisionError

    _, out, _, _ = rendered
    copy = tmp_path / "build"
    shutil.copytree(out, copy, symlinks=True)
    (copy / "out1/etc/postfix/sasl_passwd").write_text("[smtp.provider.example]:587\tacme:guess\n")
    with pytest.raises(ProvisionError, match="sasl_passwd differs from manifest.json"):
        write_bundles(copy)


def live_copy(out: Path, host: str, live: Path, entries: list[dict[str, object]]) -> list[dict[str, object]]:
    """The host's files as live files under `live`, and the manifest entries pointing at them
    (with this test's user and group: the role compares owners by name)."""
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    moved = []
    for entry in entries:
        target = live / str(entry["path"]).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / host / str(entry["path"]).lstrip("/"), target)
        target.chmod(int(str(entry["mode"]), 8))
        moved.append({**entry, "path": str(target), "owner": me, "group": group})
    return moved


def test_plan_reports_a_changed_secret_by_path_from_the_keyed_digest(rendered, tmp_path: Path) -> None:
    _, out, _, _ = rendered
    stage = stage_script()
    manifest = json.loads((out / "manifest.json").read_text())
    files = live_copy(out, "out1", tmp_path / "live", manifest["hosts"]["out1"]["files"])
    key = json.loads((out / DIGEST_KEYS).read_text())["hosts"]["out1"]
    args = {"files": files, "tables": [], "reload_on": {"postfix": ["/etc/postfix/"]}, "digest_key": key}
    assert stage.inspect(args)["files"] == []  # every secret compares equal under the host's key
    sasl = next(f for f in files if str(f["path"]).endswith("/etc/postfix/sasl_passwd"))
    Path(str(sasl["path"])).write_text("[smtp.provider.example]:587\tacme:changed\n")
    report = stage.inspect(args)
    assert report["files"] == [{"path": sasl["path"], "why": "content"}]
    assert not [v for v in json.dumps(report).split('"') if len(v) == 64]  # paths and reasons only
    # Without the key a secret is never taken as unchanged.
    assert {f["path"] for f in stage.inspect({**args, "digest_key": None})["files"]} == {f["path"] for f in files if f["secret"]}

    moved = {"hosts": {"out1": {"files": files}}}
    event = {"event": "result", "host": "out1", "task": "Report the differences", "status": "ok", "report": report}
    (plan,) = _summarise([event], moved, live_report="inspect")
    assert [(c.path, c.why, c.secret) for c in plan.files] == [(sasl["path"], "content", True)]


def test_the_role_ships_only_this_hosts_digest_key_to_the_inspect_task() -> None:
    tasks = (ROOT / "roles/mailhost/tasks/main.yml").read_text()
    inspect = tasks[tasks.index("- name: Compare the live files with the build") :].split("\n- name:")[0]
    # from this host's own file of the build (.hosts/<host>.json: its manifest entry and its key)
    assert "digest_key: \"{{ (lookup('ansible.builtin.file', mailhost_host_file) | from_json).digest_key }}\"" in inspect
    assert 'mailhost_host_file: "{{ mailhost_build_dir }}/.hosts/{{ mailhost_host }}.json"' in (ROOT / "roles/mailhost/vars/main.yml").read_text()
    # nor any file of the whole site: a host's play costs the same in a site of 1 or 500 hosts
    assert "/.secret-digest-keys.json'" not in tasks and "/manifest.json'" not in tasks
    assert "no_log: true" in inspect


def test_with_a_vault_password_the_digest_key_is_a_vault_file(rendered, tmp_path: Path) -> None:
    from provisioner.errors import ProvisionError
    from provisioner.keys.digest import state_digest_key
    from provisioner.keys.store import KeyState

    site, _, _, _ = rendered
    first = build(site, tmp_path / "b", tmp_path / "state", ENV, vault_password=b"correct horse").manifest
    key_file = tmp_path / "state" / KEY_FILE
    assert key_file.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256") and key_file.stat().st_mode & 0o777 == 0o600
    assert build(site, tmp_path / "b", tmp_path / "state", ENV, vault_password=b"correct horse").manifest == first
    with pytest.raises(ProvisionError, match="encrypted with ansible-vault"):
        state_digest_key(KeyState(tmp_path / "state"))
    key_file.write_text("not a key\n")
    with pytest.raises(ProvisionError, match="is damaged"):
        state_digest_key(KeyState(tmp_path / "state"))
