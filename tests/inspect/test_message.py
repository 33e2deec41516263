"""Reading a saved message: fields with positions, decoding for display, clear errors."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.inspect.message import MessageUnreadable, decode_value, parse_message, read_input


def fields(raw: bytes) -> list[tuple[int, str, str]]:
    return [(f.line, f.name, f.value) for f in parse_message("m.eml", raw).fields]


def test_fields_keep_order_line_numbers_and_unfold() -> None:
    raw = b"Received: from a\r\n\tby b; Mon, 23 Nov 2026 10:00:00 +0000\r\nFrom: x@y.test\r\nSubject: one\r\n  two\r\n\r\nbody\r\n"
    assert fields(raw) == [(1, "Received", "from a by b; Mon, 23 Nov 2026 10:00:00 +0000"), (3, "From", "x@y.test"), (4, "Subject", "one two")]
    assert parse_message("m.eml", raw).has_body


def test_lf_only_and_mbox_separator() -> None:
    message = parse_message("m.mbox", b"From alice@x.test Mon Nov 23 10:00:00 2026\nFrom: alice@x.test\n\nhi\n")
    assert [(f.line, f.name) for f in message.fields] == [(2, "From")]
    assert any("mbox" in n.en for n in message.notes)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "テスト"),  # RFC 2047 B, ISO-2022-JP
        (b"=?UTF-8?Q?caf=C3=A9?= ok", "café ok"),  # Q encoding
        (b"=?utf-8?b?5pel5pys6Kqe?= =?utf-8?b?44Gn44GZ?=", "日本語です"),  # adjacent words join (RFC 2047 §6.2)
        ("日本語の件名".encode(), "日本語の件名"),  # raw UTF-8 (RFC 6532)
        (b"\x1b$B%F%9%H\x1b(B", "テスト"),  # raw ISO-2022-JP, not encoded
        ("テスト".encode("cp932"), "テスト"),  # raw Shift_JIS
        (b"=?ISO-2022-JP?B?GyRCLSEbKEI=?=", "①"),  # NEC special character, as Japanese mailers write it
        (b"=?ISO-2022-JP?B?GyRCLTUkTjdvGyhC?=", "Ⅰの件"),  # NEC Roman numeral beside JIS X 0208
        (b"=?ISO-2022-JP?B?GyhJMRsoQg==?=", "ｱ"),  # half-width katakana (ESC ( I)
        (b"=?x-unknown?B?YWJj?=", "abc"),  # unknown charset: bytes shown as UTF-8
        (b"=?utf-8?B?broken", "=?utf-8?B?broken"),  # not a complete encoded word: shown as is
    ],
)
def test_subject_decoding(raw: bytes, shown: str) -> None:
    message = parse_message("m.eml", b"Subject: " + raw + b"\r\nFrom: a@b.test\r\n\r\n")
    assert message.first("subject").value == shown  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "m.eml: empty input"),
        (b"  \r\n\r\n", "m.eml: empty input"),
        (b"\x00\x01PK\x03\x04binary", "m.eml: binary data, not a message"),
        (b" folded first\r\nFrom: a@b.test\r\n\r\n", "m.eml:1: the message starts with a continuation line"),
        (b"From: a@b.test\r\nthis is not a header\r\n\r\nbody", "m.eml:2: 'this is not a header' is not a header field (Name: value)"),
        (b"From: a@b.test\r\nBad Name: x\r\n\r\n", "m.eml:2: 'Bad Name: x' is not a header field"),
        (b"\r\nbody only\r\n", "m.eml: no header fields before the first empty line"),
    ],
)
def test_unreadable_input_names_file_line_and_hint(raw: bytes, message: str) -> None:
    with pytest.raises(MessageUnreadable) as caught:
        parse_message("m.eml", raw)
    assert str(caught.value).startswith(message)
    assert "hint:" in str(caught.value)


def test_huge_header_section_and_huge_message_are_refused() -> None:
    huge = b"From: a@b.test\r\n" + b"".join(b"X-F: " + b"b" * 300 + b"\r\n" for _ in range(4_000)) + b"\r\n"
    with pytest.raises(MessageUnreadable, match=r"m.eml:\d+: the header section is larger than 1024 KB"):
        parse_message("m.eml", huge)
    with pytest.raises(MessageUnreadable, match=r"m.eml: the header section is larger than 1024 KB"):
        parse_message("m.eml", b"From: a@b.test\r\nX-Long: " + b"x" * (2 * 1024 * 1024))  # one endless line
    big = parse_message("m.eml", b"From: a@b.test\r\n\r\n" + b"body line\r\n" * 500_000)  # 5.5 MB body: read, never split
    assert big.has_body and [f.name for f in big.fields] == ["From"]
    with pytest.raises(MessageUnreadable, match=r"<stdin>: larger than 1 MB"):
        read_input("-", io.BytesIO(b"x" * (1024 * 1024 + 1)), max_bytes=1024 * 1024)


def test_missing_file_and_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MessageUnreadable, match="no such file"):
        read_input(str(tmp_path / "nope.eml"))
    with pytest.raises(MessageUnreadable, match="is a directory"):
        read_input(str(tmp_path))


def test_cut_off_multipart_body_is_noted() -> None:
    head = b'From: a@b.test\r\nContent-Type: multipart/mixed;\r\n boundary="XyZ"\r\n\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
    cut = parse_message("m.eml", head + b"--XyZ\r\nContent-Type: application/pdf\r\n\r\nJVBERi0xLjQK")
    assert any("closing MIME boundary is missing" in n.en for n in cut.notes)
    whole = parse_message("m.eml", head + b"--XyZ--\r\n")
    assert not any("MIME" in n.en for n in whole.notes)


def test_headers_only_and_cut_off_input_are_read_with_a_note() -> None:
    only = parse_message("h.txt", b"From: a@b.test\r\nSubject: x\r\n")
    assert not only.has_body and any("Only the header section" in n.en for n in only.notes)
    cut = parse_message("h.txt", b"From: a@b.test\r\nSubject: x")
    assert any("cut off" in n.en for n in cut.notes)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_fields_or_a_clear_error(data: bytes) -> None:
    """Never a traceback: random input is either read or refused with MessageUnreadable."""
    try:
        message = parse_message("r.eml", data)
    except MessageUnreadable as exc:
        assert str(exc).startswith("r.eml")
        return
    for field in message.fields:
        assert isinstance(field.value, str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_decode_value_never_raises(text: str) -> None:
    assert isinstance(decode_value(text), str)
