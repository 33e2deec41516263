"""The apply tests' site: examples/all-in-one with its host's release written out (hosts.mail.os),
so a test host of one release is never judged by the default release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
