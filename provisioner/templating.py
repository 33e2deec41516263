"""The Jinja environment of every template the product renders (host configuration files and
the DNS sheet): templates/ of the checkout or the installed package, strict about undefined
names, no autoescape (the sheet's template turns it on for itself)."""

from __future__ import annotations

import functools

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from provisioner.datadir import data_dir

TEMPLATES = data_dir("templates")  # provisioner/templates of an installed package, else the checkout's templates/


@functools.cache
def templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(name: str, **context: object) -> str:
    return templates().get_template(name).render(**context)
