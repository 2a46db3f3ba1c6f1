"""The one error type users see: a bad input, reported in one line."""

from __future__ import annotations

from pathlib import Path


class SQDInputError(ValueError):
    """Bad user input: names the file, the field and the fix, in one line.

    The CLI prints ``str(error)`` and exits with status 2, no traceback.
    """

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        fix: str | None = None,
        source: str | Path | None = None,
    ) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        self.source = None if source is None else str(source)
        super().__init__(self._line())

    def _line(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        head = ": ".join(parts)
        line = f"{head}: {self.problem}" if head else self.problem
        if self.fix:
            line += f"; fix: {self.fix}"
        # One line, always: multi-line messages from libraries are folded.
        return " ".join(line.split())

    def with_source(self, source: str | Path) -> SQDInputError:
        """The same error, attributed to a file."""
        return SQDInputError(self.field, self.problem, fix=self.fix, source=source)
