"""Quoting untrusted input in bounded excerpts.

A landed file can hold anything: one 10 MB line, a field of a million characters, a
token someone pasted. Whatever of it reaches a quarantine reason, a log line, an
alert or the sensors' stored state goes through here first, so a bad file costs a few
KB wherever it is quoted, never its own size, and each cut says how much it left out.
"""

LINE_CHARS = 500  # of any one line
TEXT_CHARS = 4000  # of a whole reason, error or message part
NAME_CHARS = 60  # of a column name or a table cell
# A text is cut only when longer than its limit by more than this: an excerpt quoted again with a
# prefix ("Reason: ...") is not cut a second time, which would count the bytes left out wrongly.
SLACK = 100


def excerpt(text: str, *, line_chars: int = LINE_CHARS, total_chars: int = TEXT_CHARS) -> str:
    """``text`` with each line cut to ``line_chars`` and the whole to ``total_chars``, each cut counted in bytes."""
    lines = [_cut(line, line_chars) for line in str(text).splitlines()]
    return _cut("\n".join(lines), total_chars)


def names(values, *, shown: int = 5) -> str:
    """Some of a list of untrusted names, each cut short, comma-separated: the rest counted."""
    values = list(values)
    listed = ", ".join(repr(_cut(str(v), NAME_CHARS)) for v in values[:shown])
    return listed + (f" and {len(values) - shown:,} more" if len(values) > shown else "")


def _cut(text: str, chars: int) -> str:
    if len(text) <= chars + SLACK:
        return text
    return f"{text[:chars]}... ({len(text[chars:].encode()):,} more bytes)"
