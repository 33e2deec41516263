"""provisioner.files: directories with exactly the mode asked for, files replaced whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.files import atomic_write, make_dirs


def test_atomic_write_never_follows_a_link_at_a_temporary_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "state" / "key.pem"
    target.parent.mkdir()
    for name in (f".key.pem.tmp{os.getpid()}", ".key.pem.tmp", ".key.pem"):  # old and guessable names
        (target.parent / name).symlink_to(victim)
    old = os.umask(0)
    try:
        atomic_write(target, b"secret", 0o600)
    finally:
        os.umask(old)
    assert victim.read_text() == "keep"
    assert target.read_bytes() == b"secret" and stat.S_IMODE(os.lstat(target).st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir() if not p.is_symlink()) == ["key.pem"]  # no temporary left


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dkim.yaml"
    target.write_text("before")

    def refuse(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, "after", 0o644)
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["dkim.yaml"]


def test_text_is_written_as_utf8_and_an_existing_file_gets_the_new_mode(tmp_path: Path) -> None:
    target = tmp_path / "records.txt"
    target.write_text("old")
    target.chmod(0o666)
    atomic_write(target, "日本語\n", 0o640)
    assert target.read_bytes() == "日本語\n".encode() and stat.S_IMODE(target.stat().st_mode) == 0o640


@settings(max_examples=25, deadline=None)
@given(umask=st.integers(0, 0o777), mode=st.sampled_from([0o700, 0o750, 0o755]), depth=st.integers(1, 3))
def test_made_directories_have_exactly_the_mode_whatever_the_umask(tmp_path_factory: pytest.TempPathFactory, umask: int, mode: int, depth: int) -> None:
    base = tmp_path_factory.mktemp("dirs")
    existing = base / "kept"
    existing.mkdir(0o711)
    existing.chmod(0o711)
    path = existing.joinpath(*[f"d{i}" for i in range(depth)])
    old = os.umask(umask)
    try:
        make_dirs(path, mode)
        atomic_write(path / "f", b"x", 0o600, mode)
    finally:
        os.umask(old)
    made = [existing.joinpath(*[f"d{i}" for i in range(n + 1)]) for n in range(depth)]
    assert [stat.S_IMODE(d.stat().st_mode) for d in made] == [mode] * depth
    assert stat.S_IMODE(existing.stat().st_mode) == 0o711  # not ours: left as it was
    assert stat.S_IMODE((path / "f").stat().st_mode) == 0o600


def test_a_file_where_a_directory_must_be_is_an_error_not_a_replacement(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "state" / "key.pem", b"k", 0o600)
    assert (tmp_path / "state").read_text() == "a file"
