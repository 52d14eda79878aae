"""Checks that Python's torch.load reads the files hac's save_torch_file / save_checkpoint wrote
(test PythonWriter.WritesFilesForPython), with the values make_zoo() and that test put there.

usage: check_cpp_written.py DIR      exits 1 listing every mismatch
"""
import math
import os
import sys

import torch

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def same(got, want, what):
    ok = (isinstance(got, torch.Tensor) and got.dtype == want.dtype and got.shape == want.shape
          and torch.equal(got, want))
    check(ok, f"{what}: got {got!r}, want {want!r}")


def check_zoo(z):
    a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    same(z["a"], a, "a")
    same(z["a_t"], a.t(), "a_t")
    check(z["a_t"].stride() == (1, 3), f"a_t stride {z['a_t'].stride()}")
    same(z["a_row"], a[1], "a_row")
    check(z["a_row"].storage_offset() == 3, "a_row storage offset")
    check(z["a"].storage().data_ptr() == z["a_t"].storage().data_ptr() == z["a_row"].storage().data_ptr(),
          "a, a_t, a_row do not share one storage")
    same(z["half"], torch.tensor([0.5, -1.0, 65504.0]).half(), "half")
    same(z["bfloat16"], torch.linspace(-2, 2, 5).bfloat16(), "bfloat16")
    same(z["double"], torch.tensor([math.pi, -0.0], dtype=torch.float64), "double")
    check(math.copysign(1.0, z["double"][1].item()) < 0, "-0.0 lost its sign")
    same(z["int64"], torch.tensor([-(2 ** 62), 0, 2 ** 62]), "int64")
    same(z["int32"], torch.tensor([-5, 7], dtype=torch.int32), "int32")
    same(z["int16"], torch.tensor([-300, 300], dtype=torch.int16), "int16")
    same(z["int8"], torch.tensor([-128, 127], dtype=torch.int8), "int8")
    same(z["uint8"], torch.tensor([0, 255], dtype=torch.uint8), "uint8")
    same(z["bool"], torch.tensor([True, False, True]), "bool")
    same(z["scalar"], torch.tensor(2.5, dtype=torch.float32), "scalar")
    same(z["empty"], torch.zeros(0, 3), "empty")
    expected = {"int": 42, "neg": -7, "big": 2 ** 40, "float": 0.25, "str": "héllo ✓", "none": None,
                "true": True, "false": False, "list": [1, "x", 2.5], "int_list": [3, 4],
                "tuple": (1, "two"), "empty_dict": {}, "empty_list": []}
    for key, want in expected.items():
        check(z.get(key, "missing") == want and type(z.get(key)) is type(want), f"{key}: got {z.get(key)!r}, want {want!r}")
    same(z["nested"]["k"]["t"], torch.ones(2), "nested/k/t")
    check(sorted(z["int_keys"]) == [0, 5], f"int_keys {list(z['int_keys'])}")
    same(z["int_keys"][5], torch.ones(1), "int_keys/5")
    check(list(z)[:3] == ["a", "a_t", "a_row"], f"key order {list(z)[:3]}")


def check_checkpoint(c):
    check(c.get("format") == "hac-checkpoint/1", f"format {c.get('format')!r}")
    check(list(c) == ["format", "model", "optimizer", "step", "rng_state", "config", "extras"], f"keys {list(c)}")
    check(list(c["model"]) == ["visual.cls_token", "textual.attn_mask"], f"model keys {list(c['model'])}")
    same(c["model"]["visual.cls_token"], torch.arange(8, dtype=torch.float32).reshape(1, 2, 4), "model/visual.cls_token")
    same(c["model"]["textual.attn_mask"], torch.ones(3, 3, dtype=torch.bool).triu(1), "model/textual.attn_mask")
    same(c["optimizer"]["visual.cls_token.exp_avg"], torch.full((1, 2, 4), 0.5), "optimizer exp_avg")
    check(c["step"] == 1234, f"step {c['step']!r}")
    same(c["rng_state"], torch.arange(16, dtype=torch.uint8), "rng_state")
    check(c["config"] == "seed: 1\n", f"config {c['config']!r}")
    check(c["extras"] == {"tokenizer": '{"vocab": 3}'}, f"extras {c['extras']!r}")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    check_zoo(torch.load(os.path.join(argv[1], "zoo.pt")))
    check_checkpoint(torch.load(os.path.join(argv[1], "checkpoint.pt")))
    for f in failures:
        print("MISMATCH:", f, file=sys.stderr)
    if not failures:
        print("torch.load read both files written by hac with the expected values")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
