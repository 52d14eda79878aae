"""Checks that Python's torch.load(weights_only=True) reads the files hac's save_torch_file / save_checkpoint wrote
(test PythonWriter.WritesFilesForPython), with the values make_zoo() and that test put there.

usage: check_cpp_written.py DIR      exits 1 listing every mismatch
"""
import io
import math
import os
import pickle
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


def same_tree(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def weights_only_reads_floats():
    buf = io.BytesIO()
    torch.save({"f": 0.5}, buf)
    buf.seek(0)
    try:
        torch.load(buf, weights_only=True)
        return True
    except pickle.UnpicklingError:
        return False


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # weights_only=True (PyTorch's default from 2.6 on) allows only the globals torch.save itself
    # emits for tensors and plain containers. PyTorch 1.13's weights-only unpickler has no
    # BINFLOAT (a torch.save of a Python float fails there too), so on such a version the zoo,
    # which holds a float, is read without it and its float-free twin with it.
    floats = weights_only_reads_floats()
    zoo = torch.load(os.path.join(argv[1], "zoo.pt"), weights_only=floats)
    check_zoo(zoo)
    no_float = torch.load(os.path.join(argv[1], "zoo_no_float.pt"), weights_only=True)
    want = {k: v for k, v in zoo.items() if k not in ("float", "list")}
    check(list(no_float) == list(want), f"zoo_no_float keys {list(no_float)}")
    check(same_tree(no_float, want), "zoo_no_float differs from the zoo")
    check_checkpoint(torch.load(os.path.join(argv[1], "checkpoint.pt"), weights_only=True))
    for f in failures:
        print("MISMATCH:", f, file=sys.stderr)
    if not failures:
        print("torch.load read both files written by hac with the expected values")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
