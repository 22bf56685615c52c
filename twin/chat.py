"""How a stored private conversation is written down, so that the importer and training read the same thing.

A conversation (kind ``chat``) is stored as plain text, one message per block::

    them: are you coming tonight?
      bring the cake
    me: on my way
    > them 2: did the report go out?
    me: sent it this morning

``me`` is the author; every other person is ``them`` (``them 2``, ``them 3``... in a group), never a name.
Continuation lines of a multi-line message are indented by two spaces. A line starting with ``> `` quotes an
earlier message that the next one replies to (Telegram's replies), placed right before that reply.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

ME = "me"
THEM = "them"
SPEAKER_RE = re.compile(rf"^(?P<quote>> )?(?P<speaker>{ME}|{THEM}(?: \d+)?): ?(?P<text>.*)$")


class ChatLine(BaseModel):
    speaker: str
    """``me`` or ``them``/``them N``."""
    text: str
    quote: bool = False
    """An earlier message quoted because the next message replies to it."""

    @property
    def mine(self) -> bool:
        return self.speaker == ME


def render_chat(lines: list[ChatLine]) -> str:
    blocks = []
    for line in lines:
        first, *rest = line.text.split("\n")
        head = f"{'> ' if line.quote else ''}{line.speaker}: {first}".rstrip()
        blocks.append("\n".join([head, *(f"  {part}".rstrip() for part in rest)]))
    return "\n".join(blocks)


def parse_chat(text: str) -> list[ChatLine]:
    """The messages of a stored conversation (the inverse of `render_chat`)."""
    lines: list[ChatLine] = []
    for raw in text.split("\n"):
        match = SPEAKER_RE.match(raw)
        if match and not raw.startswith("  "):
            lines.append(ChatLine(speaker=match["speaker"], text=match["text"], quote=bool(match["quote"])))
        elif lines:
            lines[-1].text += "\n" + raw.removeprefix("  ")
    for line in lines:
        line.text = line.text.strip("\n")
    return lines
