"""The apply tests' site: examples/all-in-one with its host's release written out (hosts.mail.os),
so a test host of one release is never judged by the default release."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner.layout import RESTART_POSTCONF, main_cf_values

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/all-in-one/site.yaml"


def example_site(work: Path, release: str) -> Path:
    """WORK/site.yaml: the all-in-one example (host `mail`, 192.0.2.10) declaring `release`."""
    work.mkdir(parents=True, exist_ok=True)
    text = EXAMPLE.read_text()
    assert "    mx_priority: 10\n" in text
    site = work / "site.yaml"
    site.write_text(text.replace("    mx_priority: 10\n", f"    mx_priority: 10\n    os: {release}\n"))
    return site


def render_example(work: Path, release: str) -> Path:
    """`provision render` of example_site into WORK/build, its state in WORK/state."""
    site = example_site(work, release)
    provision = str(Path(sys.executable).parent / "provision")
    subprocess.run([provision, "render", str(site), "-o", str(work / "build"), "--state", str(work / "state")], check=True, capture_output=True, cwd=REPO)
    return work / "build"


def edited_build(build: Path, target: Path, host: str, path: str, edit: Callable[[str], str]) -> Path:
    """A copy of `build` at `target` in which `host`'s file `path` is edited, and both manifests
    the role reads from agree: manifest.json and the host's own .hosts/<host>.json (its file
    digest, and the layout's Postfix values that decide a restart). The bundles are rebuilt by
    plan/apply."""
    shutil.copytree(build, target, symlinks=True)
    shutil.rmtree(target / ".bundles", ignore_errors=True)
    changed = target / host / path.lstrip("/")
    changed.write_text(edit(changed.read_text()))
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()
    restart = (
        main_cf_values((target / host / "etc/postfix/main.cf").read_text(), RESTART_POSTCONF) if (target / host / "etc/postfix/main.cf").exists() else None
    )

    def agree(entry: dict[str, Any]) -> None:
        for file in entry["files"]:
            if file["path"] == path:
                file["sha256"] = digest
        if restart is not None and "restart_postconf" in entry.get("layout", {}):
            entry["layout"]["restart_postconf"] = restart

    manifest = json.loads((target / "manifest.json").read_text())
    agree(manifest["hosts"][host])
    (target / "manifest.json").write_text(json.dumps(manifest))
    own = target / ".hosts" / f"{host}.json"
    data = json.loads(own.read_text())
    agree(data["manifest"])
    own.write_text(json.dumps(data))
    return target
