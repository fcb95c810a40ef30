"""Uploaded files in the console: ``open N`` shows [file N] (a CSV as a table), ``save N
PATH`` writes it to a file. Each returns the text the console prints."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sandbox.slack.render import Renderer
from sandbox.slack.state import UploadedFile

OPEN_ROWS = 200
"""``open`` shows at most this many rows of a CSV (``save`` writes them all)."""


def pick_file(files: list[UploadedFile], args: list[str], usage: str) -> UploadedFile | str:
    """[file N] of ``args``, or what to tell the person when there is none."""
    if not args or not args[0].isdigit():
        return usage
    number = int(args[0])
    if not 1 <= number <= len(files) or files[number - 1].content is None:
        shown = f"files 1 to {len(files)}" if files else "no files yet"
        return f"There is no [file {number}] ({shown}). {usage}"
    return files[number - 1]


def open_file(files: list[UploadedFile], renderer: Renderer, args: list[str]) -> str:
    upload = pick_file(files, args, "open N shows [file N], e.g. open 1")
    if isinstance(upload, str):
        return upload
    number = renderer.file_number(upload)
    content = (upload.content or b"").decode("utf-8", "replace")
    title = f"[file {number}] {upload.name}" + (f" · {upload.title}" if upload.title else "")
    if upload.name.lower().endswith(".csv"):
        return title + "\n" + table(content, OPEN_ROWS, number)
    return title + "\n" + (content if content.strip() else "(empty file)")


def save_file(files: list[UploadedFile], args: list[str]) -> str:
    usage = "save N PATH writes [file N] to PATH, e.g. save 1 digest.csv"
    upload = pick_file(files, args[:1], usage)
    if isinstance(upload, str):
        return upload
    if len(args) < 2 or not args[1].strip():
        return usage
    path = Path(args[1].strip()).expanduser()
    try:
        path.write_bytes(upload.content or b"")
    except OSError as exc:
        return f"Could not save [file {args[0]}] to {path}: {exc.strerror or exc}"
    size = len(upload.content or b"")
    return f"Saved [file {args[0]}] {upload.name} ({size} bytes) to {path}"


def table(content: str, limit: int, number: int) -> str:
    """A CSV as aligned columns; at most ``limit`` rows."""
    rows = list(csv.reader(io.StringIO(content)))
    if not rows:
        return "(empty file)"
    shown = rows[: limit + 1]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in shown) for i in range(len(shown[0]))]
    widths = [min(w, 40) for w in widths]
    lines = []
    for index, row in enumerate(shown):
        cells = [(c if len(c) <= 40 else c[:39] + "…") for c in row]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    more = len(rows) - len(shown)
    if more > 0:
        lines.append(f"... {more} more rows (save {number} PATH writes them all)")
    lines.append(f"({len(rows) - 1} rows)")
    return "\n".join(lines)
