"""Golden files for the bundled examples, compared byte for byte.

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
Key material and certificates differ per run by design; they are checked elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.render.helpers import render_example

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EXAMPLES = ["all-in-one", "multi-host"]


def comparable(path: str, secret: bool) -> bool:
    return not secret and not path.endswith((".crt", ".key", ".private"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_rendered_files_match_golden(example: str, tmp_path: Path) -> None:
    trees, _ = render_example(example, tmp_path)
    rendered = {f"{host}/{f.path}": f.content for host, tree in trees.items() for f in tree.files.values() if comparable(f.path, f.secret)}
    root = GOLDEN / example
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, content in rendered.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    on_disk = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(rendered), "set of rendered files changed"
    for rel, content in rendered.items():
        assert content == on_disk[rel], f"{example}/{rel} differs from golden"
