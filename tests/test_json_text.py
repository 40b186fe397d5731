"""JSON from untrusted bytes: each failure is a JsonError with one short reason."""

from __future__ import annotations

import pytest

from gender_cls.json_text import JsonError, loads


def test_bytes_and_text_read_alike():
    assert loads(b'{"a": [1, 2]}') == loads('{"a": [1, 2]}') == {"a": [1, 2]}


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xfe{}", "not UTF-8 text: byte 0"),
    (b"{not json", "Expecting property name enclosed in double quotes: line 1 column 2"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # a RecursionError from json
])  # fmt: skip
def test_each_failure_is_a_value_error_with_its_reason(data, reason):
    with pytest.raises(JsonError, match=f"^{reason}") as raised:
        loads(data)
    assert isinstance(raised.value, ValueError)
