"""Tokenizer of a checkpoint folder: tokenizer.json through `tokenizers`, plus prompt rendering.

A chat template in tokenizer_config.json is rendered the way transformers does it (sandboxed jinja2,
`raise_exception`, `tojson`, `strftime_now`, bos/eos tokens, `add_generation_prompt`). DeepSeek-V3.2
ships none, so without one prompts come from `model.encoding.encode_messages`. No torch here.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from model.encoding import encode_messages
from model.errors import TokenizerError


class Tokenizer:
    """Text <-> token ids for one checkpoint."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer as _HFTokenizer

        path = Path(path)
        file = path / "tokenizer.json" if path.is_dir() else path
        folder = file.parent
        try:
            self._tok = _HFTokenizer.from_file(str(file))
        except Exception as exc:  # tokenizers raises a bare Exception for missing / corrupt files
            raise TokenizerError(f"cannot load {file}: {exc}") from exc
        self.config = _read_json(folder / "tokenizer_config.json")
        self.bos_token = _token_text(self.config.get("bos_token")) or "<｜begin▁of▁sentence｜>"
        self.eos_token = _token_text(self.config.get("eos_token")) or "<｜end▁of▁sentence｜>"
        self.chat_template: str | None = self.config.get("chat_template")

    @property
    def bos_id(self) -> int | None:
        """Id of the begin-of-sentence token."""
        return self._tok.token_to_id(self.bos_token)

    @property
    def eos_id(self) -> int | None:
        """Id of the end-of-sentence token (generation stops there)."""
        return self._tok.token_to_id(self.eos_token)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        """Id of one token string (special tokens included), or None."""
        return self._tok.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special-token text such as the BOS string becomes its single id."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`."""
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def stream(self, skip_special_tokens: bool = False) -> StreamDecoder:
        """An incremental decoder for generated ids."""
        return StreamDecoder(self, skip_special_tokens)

    def render_prompt(
        self, messages: list[dict[str, Any]], thinking: bool = True, **template_vars: Any
    ) -> str:
        """Prompt text: the checkpoint's chat template if it has one, else DeepSeek-V3.2's encoding."""
        if self.chat_template:
            tools = messages[0].get("tools") if messages else None
            return self.apply_chat_template(
                messages,
                tools=tools,
                add_generation_prompt=True,
                thinking=thinking,
                **template_vars,
            )
        return encode_messages(messages, thinking=thinking)

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
        **template_vars: Any,
    ) -> str:
        """Render tokenizer_config.json's jinja chat template as transformers does."""
        if not self.chat_template:
            raise TokenizerError("this tokenizer has no chat_template")
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        def tojson(
            x: Any,
            ensure_ascii: bool = False,
            indent: int | None = None,
            separators: Any = None,
            sort_keys: bool = False,
        ) -> str:
            return json.dumps(
                x,
                ensure_ascii=ensure_ascii,
                indent=indent,
                separators=separators,
                sort_keys=sort_keys,
            )

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            template = env.from_string(self.chat_template)
            return template.render(
                messages=messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                **template_vars,
            )
        except TemplateError as exc:
            raise TokenizerError(f"chat template failed: {exc}") from exc


class StreamDecoder:
    """Turns generated ids into text pieces without splitting multi-byte characters.

    Byte-level BPE tokens can end inside a UTF-8 character; such text decodes to U+FFFD, so the
    piece is held until the next ids complete it.
    """

    def __init__(self, tok: Tokenizer, skip_special_tokens: bool):
        self._tok, self._skip = tok, skip_special_tokens
        self._ids: list[int] = []
        self._emitted = 0  # characters of decode(self._ids) already returned

    def push(self, token_id: int) -> str:
        """Add one id; return the newly certain text (possibly "")."""
        self._ids.append(token_id)
        text = self._tok.decode(self._ids, self._skip)
        if text.endswith("\ufffd"):
            return ""
        piece, self._emitted = text[self._emitted :], len(text)
        if len(self._ids) > 64:  # keep re-decoding cheap: restart from a clean boundary
            self._ids, self._emitted = [], 0
        return piece

    def flush(self) -> str:
        """Whatever is left at the end (an incomplete character decodes as U+FFFD)."""
        text = self._tok.decode(self._ids, self._skip)
        piece = text[self._emitted :]
        self._ids, self._emitted = [], 0
        return piece


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TokenizerError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _token_text(value: Any) -> str | None:
    """tokenizer_config stores tokens as strings or as {"content": ...} dicts."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None
