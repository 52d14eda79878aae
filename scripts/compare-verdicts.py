#!/usr/bin/env python3
"""Compares the verdicts of two claims.md files written by `hac collect` (for example the same
study run with different thread counts, which changes floating-point reduction order the way
another CPU does) and prints a Markdown paragraph: which claims agree, which do not, and the
differences of each claim's estimate. Exit code 0 when every verdict agrees, 1 otherwise.

    scripts/compare-verdicts.py A/claims.md B/claims.md "1 thread per run" "2 threads per run"
"""
import re
import sys


def verdicts(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 6 or cells[0] in ("claim", "---"):
                continue
            verdict = re.sub(r"\*\*", "", cells[5])
            rows[cells[0]] = (verdict, cells[2])
    return rows


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    a, b = verdicts(sys.argv[1]), verdicts(sys.argv[2])
    name_a, name_b = sys.argv[3], sys.argv[4]
    if not a or a.keys() != b.keys():
        sys.exit(f"compare-verdicts: the two files do not list the same claims ({sys.argv[1]}, {sys.argv[2]})")
    same = [c for c in a if a[c][0] == b[c][0]]
    differ = [c for c in a if a[c][0] != b[c][0]]
    out = [f"**{len(same)} of {len(a)} verdicts the same** ({name_a} vs {name_b}).", ""]
    out.append(f"| claim | verdict, {name_a} | difference, {name_a} | verdict, {name_b} | difference, {name_b} |")
    out.append("| --- | --- | ---: | --- | ---: |")
    for c in a:
        out.append(f"| {c} | {a[c][0]} | {a[c][1]} | {b[c][0]} | {b[c][1]} |")
    if differ:
        out += ["", "Verdicts that differ: " + "; ".join(differ) + "."]
    print("\n".join(out))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
