"""One spelling for text that is not valid Unicode, in every output that people or scripts read.

File names on Linux are bytes; Python carries the undecodable ones as lone surrogates
(`surrogateescape`), which cannot be written as UTF-8. Everywhere Godwit prints such a name
(listings, JSON, the event stream, tool results) it is spelled the same way: each undecodable
byte as `\\xNN`, so `caf\\xe9.txt` for the Latin-1 name, and the output stays valid UTF-8.
"""

from __future__ import annotations

from typing import Any


def safe_text(text: str) -> str:
    """`text` with each surrogate-escaped byte spelled `\\xNN` (unchanged when valid)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = (
            text.encode("utf-8", "surrogateescape")
            if _only_escapes(text)
            else text.encode("utf-8", "surrogatepass")
        )
        return raw.decode("utf-8", "backslashreplace")


def _only_escapes(text: str) -> bool:
    # surrogateescape only produces U+DC80..U+DCFF; other lone surrogates (from JSON, say)
    # are kept as their UTF-8-ish bytes and then shown escaped.
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def safe_data(value: Any) -> Any:
    """`value` with every string in it (keys included) passed through `safe_text`."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_data(k): safe_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_data(v) for v in value]
    return value
