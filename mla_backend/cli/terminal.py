"""Text for the CLI's terminal: lines wrapped at word boundaries to its width, FAIL and WARN in colour on a TTY."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

# Where the output is not a terminal (a pipe, a log file) and $COLUMNS is unset.
FALLBACK_WIDTH = 100
MIN_WIDTH = 60
_SGR = {"FAIL": "1;31", "WARN": "33"}  # bold red, yellow


def width() -> int:
    """The terminal's width in columns ($COLUMNS first), at least MIN_WIDTH."""
    return max(shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns, MIN_WIDTH)


def fill(text: str, columns: int, indent: int = 0, start: int = 0) -> str:
    """text wrapped to `columns`, every line after the first indented by `indent` spaces; the first line begins
    at column `start` (what precedes it there is the caller's). Words, paths and commands are never broken (a
    longer one overflows its line)."""
    columns = max(columns, indent + 20)
    lines = []
    for i, line in enumerate(text.split("\n")):
        lead = start if i == 0 else indent
        wrapped = textwrap.fill(line, columns, initial_indent=" " * lead, subsequent_indent=" " * indent,
                                break_long_words=False, break_on_hyphens=False)
        lines.append(wrapped[start:] if i == 0 else wrapped)
    return "\n".join(lines)


def colour_wanted(stream) -> bool:
    """Colour only on a terminal, and not where NO_COLOR (https://no-color.org) or TERM=dumb says no."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, colour: bool) -> str:
    """text in the colour of `status` (FAIL, WARN; other statuses stay plain)."""
    if not colour or status not in _SGR:
        return text
    return f"\033[{_SGR[status]}m{text}\033[0m"


def say(message: str, stream=None) -> None:
    """Print a message (default to stdout) wrapped to the terminal, continuation lines indented by two."""
    print(fill(message, width(), indent=2), file=stream or sys.stdout, flush=True)
