"""One spelling for text that is not valid Unicode, in everything Godwit stores or prints.

File names on Linux are bytes; Python carries the undecodable ones as lone surrogates
(`surrogateescape`), and a model can send `\\udcff` in JSON. Such strings cannot be written as
UTF-8, so the log, the token counter, the providers' JSON and every printed listing would fail
on them or print invalid UTF-8. Everywhere (events, listings, JSON, stream lines) each lone
surrogate becomes U+FFFD, so `caf\\ufffd.txt` for a Latin-1 `café.txt`, and every output stays
valid UTF-8 that `json.loads` reads.
"""

from __future__ import annotations

import re
from typing import Any

# A str never holds a surrogate pair (it holds the code point), so any surrogate is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (the same str when there is none)."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def safe_data(value: Any) -> Any:
    """`value` with every string in it (keys included) passed through `safe_text`."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_data(k): safe_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_data(v) for v in value]
    return value
