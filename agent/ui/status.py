"""The status bar: model, session, permission mode, tokens and cost, context fullness, busy
(and what long work is under way).

State comes down as reactive attributes that the app sets; the bar only draws them.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from agent.ui.format import compact_number

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusBar(Widget):
    """One line at the bottom of the screen."""

    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    model = reactive("")
    session = reactive("")
    mode = reactive("default")
    tokens_in = reactive(0)
    tokens_out = reactive(0)
    cost = reactive(0.0)
    context_total = reactive(0)
    context_window = reactive(0)
    busy = reactive(False)
    # The agent waits for the user's answer (approval): no spinner, it is not working.
    waiting = reactive(False)
    hint = reactive("")
    # Long work under way (a model loading its shards, the first snapshot of a large tree,
    # compaction): shown in place of "working" until it finishes.
    progress = reactive("")
    _frame = reactive(0)
    _since = 0.0

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._tick, pause=True)

    def watch_busy(self, busy: bool) -> None:
        self._since = time.monotonic()
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.resume() if busy else timer.pause()

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(_SPINNER)

    def render(self) -> Text:
        # What must stay at any width: the state, the mode, the context figure and the session
        # id (to resume it); the model name, then the token counts, then the cost give way.
        width = self.size.width  # inside the padding

        def fits(parts: list[tuple[str, Text]]) -> bool:
            return sum(len(t) for _, t in parts) <= width

        parts = self._parts()
        if not fits(parts) and len(self.model) > 14:
            parts = self._parts(model=self.model[:13] + "…")
        for drop in ("model", "tokens", "cost"):
            if fits(parts):
                break
            parts = [(k, t) for k, t in parts if k != drop]
        if not fits(parts):
            parts = [(k, t) for k, t in self._parts(short_ctx=True) if k in dict(parts)]
        text = Text(no_wrap=True, overflow="ellipsis")
        for _, part in parts:
            text.append_text(part)
        return text

    def _parts(self, model: str | None = None, short_ctx: bool = False) -> list[tuple[str, Text]]:
        parts: list[tuple[str, Text]] = []
        if self.waiting:
            parts.append(("state", Text("? waiting for approval", style="bold magenta")))
        elif self.busy:
            elapsed = int(time.monotonic() - self._since)
            doing = self.progress or "working"
            parts.append(
                ("state", Text(f"{_SPINNER[self._frame]} {doing} {elapsed}s", style="bold yellow"))
            )
        else:
            parts.append(("state", Text("● ready", style="green")))
        parts.append(("model", Text(f"  {model or self.model}")))
        mode_style = {
            "default": "",
            "acceptEdits": "magenta",
            "plan": "cyan",
            "bypassPermissions": "bold red",
        }.get(self.mode, "")
        parts.append(("mode", Text(f"  ⏵ {self.mode}", style=mode_style)))
        # Fixed widths: the bar does not jitter as the numbers grow.
        parts.append(
            (
                "tokens",
                Text(
                    f"  ↑{compact_number(self.tokens_in):>5} ↓{compact_number(self.tokens_out):>5}"
                ),
            )
        )
        parts.append(("cost", Text(f"  ${self.cost:.4f}")))
        if self.context_window:
            pct = 100 * self.context_total / self.context_window
            style = "red" if pct >= 80 else "yellow" if pct >= 50 else ""
            figure = (
                f"  ctx {pct:.0f}%"
                if short_ctx
                else (
                    f"  ctx {pct:>3.0f}% ({compact_number(self.context_total):>5}"
                    f"/{compact_number(self.context_window)})"
                )
            )
            parts.append(("ctx", Text(figure, style=style)))
        parts.append(("session", Text(f"  {self.session}", style="dim")))
        if self.hint:
            parts.append(("hint", Text(f"  {self.hint}", style="italic")))
        return parts
