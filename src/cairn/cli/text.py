"""Text that reaches the terminal as it is, without a character that moves the cursor,
colours it or forges a line; standard library only, so the last resort can use it even
when the library fails to import."""

from __future__ import annotations

__all__ = ["printable", "printable_lines"]


def printable(text: str) -> str:
    """``text`` as it is when every character prints and none is a backslash; otherwise
    its Python repr (``'a\\nb'``, ``'\\x1b[31m'``), quoted, so a file name cannot move the
    cursor, colour the terminal, forge a line or pass for another name. Rich markup is
    never interpreted (the consoles print text as it is)."""
    return text if text.isprintable() and "\\" not in text else repr(text)


def printable_lines(text: str) -> str:
    """Multi-line ``text`` (an error, a job's reason) with its line breaks kept and every
    other character that does not print escaped as repr does, without quotes."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)
