"""Fixtures of the apply tests: the all-in-one example rendered once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apply.sites import render_example


@pytest.fixture(scope="module")
def rendered_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`provision render` of examples/all-in-one for Debian 12 (the chroot test host's release),
    its state (DKIM keys, certificate) in tmp."""
    return render_example(tmp_path_factory.mktemp("aio"), "debian-12")
