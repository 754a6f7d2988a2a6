"""File-name patterns with named parts: what a landed dataset's files are called.

A pattern is the file name with placeholders, ``sales_{first:date}[_{last:date}].csv``:
``{name:date}`` is an ISO day (``YYYY-MM-DD``, ASCII digits, a real calendar date),
``{name:word}`` letters, digits, ``-`` and ``_``; ``[...]`` is an optional part. Matching
is strict and total: a name either matches with valid parts, matches the shape with
a part that is impossible (a 13th month, a range that ends before it starts), or does
not match; nothing a landed name holds makes it raise.

The dates a name promises are its first and last date parts, in order (``first <= last``);
a file whose name has one date covers that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

KINDS = {"date": "[0-9]{4}-[0-9]{2}-[0-9]{2}", "word": "[A-Za-z0-9_-]+"}
SHOWN = {"date": "<YYYY-MM-DD>", "word": "<word>"}
EXAMPLES = {"date": "2015-07-31", "word": "x"}
MAX_NAME_CHARS = 200
_TOKEN = re.compile(r"\{(?P<name>[a-z][a-z0-9_]*):(?P<kind>[a-z]+)\}|\[|\]|[^{}\[\]]+|.")


class PatternError(ValueError):
    """A pattern that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class Part:
    name: str
    kind: str


class FilePattern:
    def __init__(self, text: str):
        self.text = text
        self.parts: list[Part] = []
        regex, shown, depth = [], [], 0
        for token in _TOKEN.finditer(text):
            value = token.group(0)
            if token.group("name"):
                name, kind = token.group("name"), token.group("kind")
                if kind not in KINDS:
                    raise PatternError(f"{text!r}: unknown kind {kind!r} in {value} (known: {', '.join(KINDS)})")
                if any(p.name == name for p in self.parts):
                    raise PatternError(f"{text!r}: the part {{{name}}} appears twice")
                self.parts.append(Part(name, kind))
                regex.append(f"(?P<{name}>{KINDS[kind]})")
                shown.append(SHOWN[kind])
            elif value == "[":
                depth += 1
                regex.append("(?:")
                shown.append("[")
            elif value == "]":
                depth -= 1
                if depth < 0:
                    raise PatternError(f"{text!r}: a ']' without its '['")
                regex.append(")?")
                shown.append("]")
            elif value in "{}":
                raise PatternError(f"{text!r}: a placeholder is {{name:kind}}, e.g. {{day:date}}")
            else:
                regex.append(re.escape(value))
                shown.append(value)
        if depth:
            raise PatternError(f"{text!r}: a '[' without its ']'")
        if "/" in text or not re.search(r"\.[A-Za-z0-9]+$", text):
            raise PatternError(f"{text!r}: a pattern is a file name with an extension, e.g. sales_{{day:date}}.csv")
        self._regex = re.compile("".join(regex))
        self.shown = "".join(shown)

    @property
    def date_parts(self) -> list[str]:
        return [p.name for p in self.parts if p.kind == "date"]

    def matches(self, name: str) -> bool:
        """The name has this pattern's shape (its parts may still be impossible: see ``problem``)."""
        return len(name) <= MAX_NAME_CHARS and self._regex.fullmatch(name) is not None

    def values(self, name: str) -> dict[str, str | date] | None:
        """The parts of a valid name (dates as dates), or None when it is not one."""
        match = self._regex.fullmatch(name) if len(name) <= MAX_NAME_CHARS else None
        if match is None:
            return None
        values = {}
        for part in self.parts:
            value = match.group(part.name)
            if value is None:
                continue
            if part.kind == "date":
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    return None
            values[part.name] = value
        days = [values[n] for n in self.date_parts if n in values]
        return values if days == sorted(days) else None

    def problem(self, name: str) -> str | None:
        """Why a name of this shape is not a valid one (None when it is valid or not of this shape)."""
        if not self.matches(name) or self.values(name) is not None:
            return None
        match = self._regex.fullmatch(name)
        present = [(n, match.group(n)) for n in self.date_parts if match.group(n) is not None]
        for part, value in present:
            try:
                date.fromisoformat(value)
            except ValueError:
                return f"{value} in its name is not a calendar date"
        (first, start), (last, end) = present[0], present[-1]
        return f"its {first} day {start} is after its {last} day {end}"

    def dates(self, name: str) -> tuple[date, date] | None:
        """The first and last day a valid name promises, or None when it names no date (or is not valid)."""
        values = self.values(name) or {}
        days = [values[n] for n in self.date_parts if n in values]
        return (days[0], days[-1]) if days else None

    def examples(self) -> list[str]:
        """Names of this pattern, with and without each optional part: what another pattern must not match."""
        tokens = iter([EXAMPLES[t.group("kind")] if t.group("name") else t.group(0) for t in _TOKEN.finditer(self.text)])

        def expand() -> list[str]:  # up to the end of the pattern, or of the optional part we are in
            names = [""]
            for token in tokens:
                if token == "]":
                    break
                endings = ["", *expand()] if token == "[" else [token]
                names = [name + ending for name in names for ending in endings]
            return names

        return sorted(set(expand()))
