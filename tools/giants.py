#!/usr/bin/env python3
"""Lists the giants: Rust files over a line limit and functions over a line limit.

    python3 tools/giants.py [PATH ...] [--file-lines 600] [--fn-lines 60] [--tests]

PATH: files or folders (default: src/protocol). A function runs from its `fn` line to the
closing brace rustfmt puts at the `fn` line's indentation, both counted. Test code (files
named `tests.rs` or `*_tests.rs`, and `#[cfg(test)] mod` blocks) is left out unless --tests.
Exits 1 when it lists anything, so it can gate a change.
"""

import argparse
import re
import sys
from pathlib import Path

FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def is_test_file(p: Path) -> bool:
    return p.name == "tests.rs" or p.name.endswith("_tests.rs")


def rust_files(paths):
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(p.rglob("*.rs"))
        elif p.suffix == ".rs":
            yield p


def test_blocks(lines):
    """Line ranges (start, end) of `#[cfg(test)] mod x { ... }` blocks written inline."""
    out = []
    for i, line in enumerate(lines):
        if line.strip() != "#[cfg(test)]" or i + 1 >= len(lines):
            continue
        m = re.match(r"^(\s*)(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{\s*$", lines[i + 1])
        if not m:
            continue
        close = m.group(1) + "}"
        for j in range(i + 2, len(lines)):
            if lines[j].rstrip() == close:
                out.append((i, j))
                break
    return out


def functions(lines):
    """(name, first line, length) of every function with a body."""
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group(1)
        # A one-line function, or a declaration without a body.
        if line.rstrip().endswith("}") or line.rstrip().endswith(";"):
            continue
        close = indent + "}"
        for j in range(i + 1, len(lines)):
            text = lines[j].rstrip()
            if text == close:
                yield m.group(7), i + 1, j - i + 1
                break
            # A declaration spread over lines (a trait method without a body).
            if text.endswith(";") and text.startswith(indent) and not text.startswith(indent + " "):
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["src/protocol"])
    ap.add_argument("--file-lines", type=int, default=600)
    ap.add_argument("--fn-lines", type=int, default=60)
    ap.add_argument("--tests", action="store_true", help="count test code too")
    args = ap.parse_args()
    found = 0
    for p in rust_files(args.paths):
        if is_test_file(p) and not args.tests:
            continue
        lines = p.read_text().splitlines()
        if len(lines) > args.file_lines:
            print(f"file {p}: {len(lines)} lines")
            found += 1
        skip = [] if args.tests else test_blocks(lines)
        for name, at, n in functions(lines):
            if n > args.fn_lines and not any(a <= at - 1 <= b for a, b in skip):
                print(f"fn {p}:{at} {name}: {n} lines")
                found += 1
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
