"""Fixtures of the apply tests: the all-in-one example rendered once per module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`provision render` of examples/all-in-one, its state (DKIM keys, certificate) in tmp."""
    work = tmp_path_factory.mktemp("aio")
    out = work / "build"
    provision = str(Path(sys.executable).parent / "provision")
    subprocess.run(
        [provision, "render", str(REPO / "examples/all-in-one/site.yaml"), "-o", str(out), "--state", str(work / "state")], check=True, capture_output=True
    )
    return out
