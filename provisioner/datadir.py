"""Where the product's data directories are: templates/ and roles/.

They live at the top of the repository (the product's layout) and ship inside the installed
package as provisioner/templates and provisioner/roles (pyproject.toml maps them there). The
package's own copy wins: a checkout has none, and beside an installed package (site-packages)
an unrelated top-level templates/ may well exist.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory `name` (templates or roles): inside the installed package, else in the checkout."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name
