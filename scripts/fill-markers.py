#!/usr/bin/env python3
"""Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in FILE with the
contents of SOURCE (a generated file), so that numbers in the docs are pasted by a command, not
retyped.

usage: scripts/fill-markers.py FILE NAME SOURCE
  e.g. scripts/fill-markers.py README.md study-table results/study/collected/table_main.md
       build/hac config --reference > /tmp/ref.md && scripts/fill-markers.py docs/config.md reference /tmp/ref.md
"""
import sys


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, name, source = argv[1:]
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    text = open(path, encoding="utf-8").read()
    b, e = text.find(begin), text.find(end)
    if b < 0 or e < b:
        print(f"{path}: no markers {begin.strip()} ... {end}", file=sys.stderr)
        return 1
    # The body, then one blank line before the end marker (Markdown needs it after a table).
    body = open(source, encoding="utf-8").read().rstrip("\n") + "\n\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:b + len(begin)] + body + text[e:])
    print(f"{path}: {name} filled from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
