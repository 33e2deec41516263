"""provisioner.apply.bundle: one deterministic tar per host, refused when the tree was edited."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from provisioner.apply import write_bundles
from provisioner.errors import ProvisionError


def test_bundle_is_deterministic_and_carries_manifest_owners(rendered_build: Path) -> None:
    build = rendered_build
    first = write_bundles(build)["mail"].read_bytes()
    (build / ".bundles/mail.tar").unlink()
    assert write_bundles(build)["mail"].read_bytes() == first
    manifest = json.loads((build / "manifest.json").read_text())["hosts"]["mail"]["files"]
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar}
    assert sorted(members) == sorted(f["path"].lstrip("/") for f in manifest)
    for entry in manifest:
        member = members[entry["path"].lstrip("/")]
        assert (f"{member.mode:04o}", member.uname, member.gname, member.mtime) == (entry["mode"], entry["owner"], entry["group"], 0)


def test_bundle_refuses_a_tree_edited_after_render(rendered_build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "build"
    shutil.copytree(rendered_build, copy)
    (copy / "mail/etc/postfix/main.cf").write_text("edited\n")
    with pytest.raises(ProvisionError, match="differs from manifest.json"):
        write_bundles(copy)


def test_missing_manifest_says_render_first(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="provision render"):
        write_bundles(tmp_path)
