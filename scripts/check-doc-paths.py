#!/usr/bin/env python3
"""Checks that the user-facing docs stand alone: every repository path they name exists, and none
points outside the repository (a `shared/` folder, the project's private SPEC or DESIGN notes).

    scripts/check-doc-paths.py [REPO]

Scans README.md, docs/*.md and the README.md of configs/, data/, results/, launch/, scripts/.
A path counts when it starts with one of the repository's tracked top-level folders (src/, docs/,
configs/, tests/, launch/, scripts/, bench/, cmake/) or is a tracked top-level file named in
backticks; `results/...` and `data/...` are outputs and are not checked. Globs and placeholders
(`*`, `<...>`, `NAME`, `...`) are skipped. Exit code 1 with one line per problem.
"""
import os
import re
import subprocess
import sys

CHECKED_DIRS = ("src", "docs", "configs", "tests", "launch", "scripts", "bench", "cmake")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./+-]*[\w/])" % "|".join(CHECKED_DIRS))
FORBIDDEN = [
    (re.compile(r"(?<![\w-])shared/"), "names a shared/ folder the repository does not have"),
    (re.compile(r"\b(SPEC|DESIGN) §"), "cites a private design note; cite the paper or public code instead"),
]


def docs(repo):
    out = [os.path.join(repo, "README.md")]
    d = os.path.join(repo, "docs")
    out += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".md"))
    for sub in ("configs", "data", "results", "launch", "scripts"):
        p = os.path.join(repo, sub, "README.md")
        if os.path.exists(p):
            out.append(p)
    return out


def exists(repo, path):
    path = path.rstrip("/.")
    if any(ch in path for ch in "*<>") or "..." in path or re.search(r"/[A-Z][A-Z_]+(/|$)", path):
        return True  # a glob or a placeholder
    full = os.path.join(repo, path)
    if os.path.exists(full):
        return True
    # "src/sweep/grid" naming grid.h/grid.cpp, "docs/figures/x" without its extension
    parent, stem = os.path.split(full)
    return os.path.isdir(parent) and any(f.startswith(stem + ".") for f in os.listdir(parent))


def main():
    repo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    problems = []
    for f in docs(repo):
        rel = os.path.relpath(f, repo)
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                for pattern, why in FORBIDDEN:
                    if pattern.search(line):
                        problems.append(f"{rel}:{n}: {why}: {line.strip()[:100]}")
                for m in PATH.finditer(line):
                    if not exists(repo, m.group(1)):
                        problems.append(f"{rel}:{n}: names {m.group(1)}, which is not in the repository")
    for p in problems:
        print(p)
    print(f"check-doc-paths: {len(docs(repo))} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
