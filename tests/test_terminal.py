"""mla_backend.cli.terminal: wrapping at word boundaries, colour only where a terminal wants it."""

import io

from mla_backend.cli import terminal


def test_fill_wraps_at_words_and_indents_continuation_lines():
    text = "install a CUDA build of torch >= 2.11 (`pip install vllm==0.26.0` brings torch 2.11.0 with CUDA 13.0)"
    lines = terminal.fill(text, 40, indent=4).splitlines()
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert all(line.startswith("    ") and not line.startswith("     ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == text


def test_fill_never_breaks_a_path_and_keeps_line_breaks():
    path = "/work/main/.venv-ci/lib/python3.11/site-packages/cutlass_library/source/include"
    assert terminal.fill(f"headers in {path}", 40).splitlines() == ["headers in", path]
    assert terminal.fill("one\n\ntwo", 40, indent=2) == "one\n\n  two"


def test_fill_can_start_after_what_the_caller_printed():
    text = terminal.fill("aaaaaaaa bbbbbbbb cccccccc", 26, indent=6, start=6)
    assert ("x" * 6 + text).splitlines() == ["xxxxxxaaaaaaaa bbbbbbbb", "      cccccccc"]


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_colour_only_on_a_terminal_that_wants_it(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert terminal.colour_wanted(Stream(tty=True)) and not terminal.colour_wanted(Stream(tty=False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not terminal.colour_wanted(Stream(tty=True))
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not terminal.colour_wanted(Stream(tty=True))


def test_only_fail_and_warn_are_painted():
    assert terminal.paint("FAIL", "FAIL", True) == "\033[1;31mFAIL\033[0m"
    assert terminal.paint("WARN", "WARN", True).startswith("\033[33m")
    assert terminal.paint("ok", "ok", True) == "ok" and terminal.paint("FAIL", "FAIL", False) == "FAIL"


def test_width_follows_columns_with_a_floor(monkeypatch):
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal.width() == 132
    monkeypatch.setenv("COLUMNS", "20")
    assert terminal.width() == terminal.MIN_WIDTH
