#!/usr/bin/env python3
# The layering check (CTest: unit.layering): every #include "folder/..." in src/ must be allowed
# by src/LAYERS, and the third-party headers it confines (MPI, NCCL, HDF5) may appear only in
# their folder. Prints one line per violation (file:line: the forbidden edge) and exits 1.
#   check_layers.py SRC_DIR [LAYERS_FILE]     (LAYERS_FILE defaults to SRC_DIR/LAYERS)
import fnmatch
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc")
MAIN = "main.cpp"


def parse_rules(path):
    """Returns (allowed: {unit: [folders]} in file order, headers: [(patterns, folder, line)])."""
    allowed, headers, errors = {}, [], []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if ":" not in line:
                errors.append(f"{path}:{number}: expected `folder: allowed, ...`")
                continue
            left, right = (part.strip() for part in line.split(":", 1))
            names = [n.strip() for n in right.split(",") if n.strip()]
            if left.startswith("headers "):
                patterns = [p.strip() for p in left[len("headers "):].split(",") if p.strip()]
                if len(names) != 1:
                    errors.append(f"{path}:{number}: a headers line names exactly one folder")
                    continue
                headers.append((patterns, names[0], number))
            elif left in allowed:
                errors.append(f"{path}:{number}: {left} has a second line")
            else:
                allowed[left] = names
    return allowed, headers, errors


def check_rules(allowed, headers, folders, rules_path):
    """The rules name existing folders only, and each folder uses only folders listed above it."""
    errors = []
    order = list(allowed)
    for unit, deps in allowed.items():
        if unit != MAIN and unit not in folders:
            errors.append(f"{rules_path}: `{unit}` is not a folder of src/")
        for dep in deps:
            if dep not in folders:
                errors.append(f"{rules_path}: {unit} may include `{dep}`, which is not a folder of src/")
            elif dep in allowed and order.index(dep) >= order.index(unit):
                errors.append(f"{rules_path}: {unit} may include {dep}, which is not listed above it")
    for folder in sorted(folders | {MAIN}):
        if folder not in allowed:
            errors.append(f"{rules_path}: no line for src/{folder} (add `{folder}: allowed, ...`)")
    for _, folder, number in headers:
        if folder not in folders:
            errors.append(f"{rules_path}:{number}: `{folder}` is not a folder of src/")
    return errors


def sources(src):
    """(unit, path relative to src) for every source file: its top folder, or main.cpp."""
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), src)
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            parts = rel.split(os.sep)
            yield (parts[0] if len(parts) > 1 else rel), rel


def check_sources(src, allowed, headers, folders):
    errors = []
    for unit, rel in sources(src):
        if unit not in allowed:
            errors.append(f"src/{rel}: no rule for `{unit}` in the layers file")
            continue
        with open(os.path.join(src, rel), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                name = m.group(2).strip()
                where = f"src/{rel}:{number}"
                for patterns, owner, _ in headers:
                    if unit != owner and any(fnmatch.fnmatchcase(name, p) for p in patterns):
                        shown = f"<{name}>" if m.group(1) == "<" else f'"{name}"'
                        errors.append(f"{where}: #include {shown}: only src/{owner}/ may include it")
                head = name.split("/", 1)[0]
                if m.group(1) == '"' and "/" in name and head in folders and head != unit \
                        and head not in allowed[unit]:
                    errors.append(f'{where}: #include "{name}": {unit} -> {head} is not allowed '
                                  f"({unit} may include: {', '.join(allowed[unit]) or 'nothing'})")
    return errors


def main(argv):
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} SRC_DIR [LAYERS_FILE]", file=sys.stderr)
        return 2
    src = argv[1]
    rules_path = argv[2] if len(argv) == 3 else os.path.join(src, "LAYERS")
    folders = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}
    allowed, headers, errors = parse_rules(rules_path)
    if not errors:
        errors = check_rules(allowed, headers, folders, rules_path)
    if not errors:
        errors = check_sources(src, allowed, headers, folders)
    for e in errors:
        print(e)
    if errors:
        print(f"layering: {len(errors)} violation(s)")
        return 1
    print(f"layering: every include in {len(list(sources(src)))} files follows {os.path.basename(rules_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
