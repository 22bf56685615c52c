"""How a change the author committed is written down, so that the GitHub collector and training read the same thing.

One document (kind ``code``) per file per commit of the author's: a header line, the commit message, then
the lines that commit added to the file, hunk by hunk. Context and removed lines are left out: they may be
someone else's. ::

    commit 1f3a9c2e... src/retry.py (python)

    Retry with exponential backoff

    Flaky networks made the nightly sync fail.

    ````python
    def retry(call, attempts=5):
        ...
    ````

The fence is longer than any run of backticks in the message or the code, so code that holds fences of
its own (a docstring with a markdown example) stays whole.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

HEADER_RE = re.compile(r"^commit (?P<commit>[0-9a-f]{7,64}) (?P<path>.+) \((?P<language>[\w+#.-]+)\)$")
FENCE_RE = re.compile(r"^(?P<fence>`{3,})(?P<language>[\w+#.-]*)$")
BACKTICKS_RE = re.compile(r"`+")


class AuthoredChange(BaseModel):
    """The lines one commit of the author's added to one file."""

    commit: str
    path: str
    language: str
    message: str
    hunks: list[str] = Field(min_length=1)
    """Added lines of each hunk, in file order (each hunk one contiguous run of new lines)."""

    @property
    def subject(self) -> str:
        return self.message.strip().split("\n", 1)[0].strip()

    @property
    def body(self) -> str:
        parts = self.message.strip().split("\n", 1)
        return parts[1].strip() if len(parts) > 1 else ""

    @property
    def code(self) -> str:
        return "\n\n".join(self.hunks)

    def render(self) -> str:
        longest = max((len(run) for run in BACKTICKS_RE.findall(self.message + "\n" + self.code)), default=0)
        fence = "`" * max(4, longest + 1)
        blocks = "\n\n".join(f"{fence}{self.language}\n{hunk}\n{fence}" for hunk in self.hunks)
        return f"commit {self.commit} {self.path} ({self.language})\n\n{self.message.strip()}\n\n{blocks}\n"


def parse_change(text: str) -> AuthoredChange | None:
    """The change a document's text holds, or None when the text is not one (an ordinary source file)."""
    lines = text.replace("\r\n", "\n").split("\n")
    header = HEADER_RE.match(lines[0]) if lines else None
    if header is None:
        return None
    message: list[str] = []
    hunks: list[str] = []
    index = 1
    while index < len(lines):  # the message runs up to the first fence line of the exact language
        opening = FENCE_RE.match(lines[index])
        if opening and opening["language"] == header["language"] and len(opening["fence"]) >= 4:
            break
        message.append(lines[index])
        index += 1
    while index < len(lines):
        opening = FENCE_RE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        end = next((j for j in range(index + 1, len(lines)) if lines[j] == fence), None)
        if end is None:
            return None  # an unclosed block: not written by `render`
        hunks.append("\n".join(lines[index + 1 : end]))
        index = end + 1
    if not hunks:
        return None
    return AuthoredChange(
        commit=header["commit"], path=header["path"], language=header["language"],
        message="\n".join(message).strip(), hunks=hunks,
    )
