"""Error types shared by every layer.

`InstanceError` is the single kind of bad-input error: it names the file, the
place in the file (a dotted path such as ``sources[2].supply.Dy.capacity``,
plus the line when known) and what is wrong. The command line turns it into
one message and exit code 2.
"""

from __future__ import annotations


class InstanceError(Exception):
    """Bad input: a file, a place inside it and a message."""

    def __init__(self, message: str, place: str = "", file: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.place = place
        self.file = file
        self.line = line

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file) + (f":{self.line}" if self.line else ""))
        if self.place:
            parts.append(self.place)
        parts.append(self.message)
        return ": ".join(parts)


class UsageError(ValueError):
    """Bad usage of the command line or the API (an unknown policy, a malformed
    --cap range, a setting out of range); a ValueError for Python callers."""
