"""A seed's CSV file read as the engine needs it before DuckDB loads it: the header line and,
after a load fails, the line where an unterminated quote starts."""
from __future__ import annotations

import csv
from pathlib import Path

from duckrec.core.errors import NodeError


def read_header(path: Path, rel: str, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            header = next(csv.reader(f, delimiter=delimiter))
        except StopIteration:
            raise NodeError("the file is empty: expected a header line with the column names", path=rel) from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise NodeError(f"cannot read the header line: {e}", path=rel, line=1) from None
    names = [h.strip() for h in header]
    if not any(names):
        raise NodeError("the header line is blank: expected the column names", path=rel, line=1)
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise NodeError(f"header column(s) {blank} have no name", path=rel, line=1)
    return names


def unterminated_quote_line(path: Path, quote: str, delimiter: str) -> int | None:
    """The line where a quoted field opens and never closes, if one does."""
    line, opened, at_field_start, in_quote = 1, None, True, False
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        while chunk := f.read(1 << 20):
            i = 0
            while i < len(chunk):
                c = chunk[i]
                if in_quote:
                    if c == quote:
                        nxt = chunk[i + 1] if i + 1 < len(chunk) else f.read(1)
                        if i + 1 >= len(chunk):
                            chunk += nxt
                        if nxt == quote:
                            i += 1  # an escaped quote
                        else:
                            in_quote = False
                    elif c == "\n":
                        line += 1
                elif c == quote and at_field_start:
                    in_quote, opened = True, line
                at_field_start = not in_quote and c in (delimiter, "\n", "\r")
                if c == "\n" and not in_quote:
                    line += 1
                i += 1
    return opened if in_quote else None
