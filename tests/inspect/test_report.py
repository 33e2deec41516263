"""inspect/report.py: the JSON report is complete and the same twice."""

from __future__ import annotations

from provisioner.inspect import inspect_message, inspection_json, parse_message
from tests.inspect.conftest import message


def test_json_is_complete_and_stable() -> None:
    raw = message("From: =?utf-8?b?5bGx55Sw?= <a@example.org>", "Subject: x")
    one = inspection_json(inspect_message(parse_message("m", raw)), "ja")
    assert one == inspection_json(inspect_message(parse_message("m", raw)), "ja")
    assert one["from"] == [{"display": "山田", "address": "a@example.org", "domain": "example.org"}]
    assert one["verdict"] == "unknown" and one["summary"][0].startswith("未検証")
