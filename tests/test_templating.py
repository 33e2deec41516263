"""provisioner.templating: one strict Jinja environment for host files and the DNS sheet."""

from __future__ import annotations

import jinja2
import pytest

from provisioner.templating import TEMPLATES, render_template, templates


def test_every_template_is_found_in_the_one_directory() -> None:
    names = set(templates().list_templates())
    assert {"main.cf.j2", "master.cf.j2", "sheet.html.j2"} <= names
    assert names == {str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*") if p.is_file()}


def test_a_missing_variable_is_an_error_not_an_empty_setting() -> None:
    # StrictUndefined: a renamed context key must fail the render, not write "key =" into main.cf.
    with pytest.raises(jinja2.UndefinedError):
        render_template("main.cf.j2", site="s", host="h")


def test_the_sheet_escapes_data_and_host_files_keep_their_text() -> None:
    env = templates()
    assert env.from_string("{{ v }}\n").render(v="a<b & c") == "a<b & c\n"  # configuration files: as written, final newline kept
    sheet = env.get_template("sheet.html.j2")
    assert sheet.environment is env and "{% autoescape true %}" in (TEMPLATES / "sheet.html.j2").read_text(encoding="utf-8")
