"""JSON text from a file someone else may have written: each way it can fail is one short reason.

Written around json.loads because it fails three ways with three exception types, one of which
(RecursionError, for nesting past the parser's limit) is not a ValueError at all."""

from __future__ import annotations

import json
from typing import Any


class JsonError(ValueError):
    """Text that is not UTF-8, not JSON, or nested too deeply; the message is the reason."""


def loads(data: bytes | str) -> Any:
    """json.loads of UTF-8 bytes or str, or a JsonError saying why not."""
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text: byte {error.start}"
    except json.JSONDecodeError as error:
        reason = str(error)
    except RecursionError:
        reason = "nested too deeply"
    raise JsonError(reason)
