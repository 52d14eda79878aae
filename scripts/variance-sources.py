#!/usr/bin/env python3
"""Where a study's variance comes from: for every unlearning row (model, method, forget-set size)
of the main originals in a results_long.csv written by `hac collect`, the mean absolute difference
of forget and retain top-1 between units that differ only in the original's pretraining seed, and
between units that differ only in the forget set.

    scripts/variance-sources.py results/study/collected/results_long.csv
"""
import collections
import csv
import itertools
import statistics
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = collections.defaultdict(dict)
    with open(sys.argv[1], encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["kind"] != "unlearn" or r["stage"] == "trial" or "learned" not in r["curvature"] and r["curvature"] != "euclidean":
                continue
            if r["metric"] not in ("zero_shot.forget_top1", "zero_shot.retain_top1") or not r["value"]:
                continue
            key = (r["model"], r["variant"], r["concepts"], r["metric"])
            rows[key][(r["original_seed"], r["forget"], r["seed"])] = float(r["value"])
    spread = collections.defaultdict(lambda: {"original": [], "forget set": []})
    for key, units in rows.items():
        for (a, va), (b, vb) in itertools.combinations(units.items(), 2):
            if a[1] == b[1] and a[2] == b[2] and a[0] != b[0]:
                spread[key[3]]["original"].append(abs(va - vb))
            if a[0] == b[0] and a[2] == b[2] and a[1] != b[1]:
                spread[key[3]]["forget set"].append(abs(va - vb))
    print("| metric | units differing in the original only | units differing in the forget set only |")
    print("| --- | ---: | ---: |")
    for metric, d in sorted(spread.items()):
        cells = [f"{statistics.mean(v):.1f} points (n {len(v)})" if v else "—" for v in (d["original"], d["forget set"])]
        print(f"| {metric} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
