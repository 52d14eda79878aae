"""Writes dataset files with h5py alone (no hac code), following docs/data-format.md, plus broken
variants; the C++ tests must read the good ones exactly and refuse each broken one by name.

usage: gen_h5py_fixtures.py OUT_DIR
"""
import json
import os
import sys

import h5py
import numpy as np


def good(path, str_kind="vlen", concept_dtype="int32", parents=True):
    rng = np.random.default_rng(5)
    names = ["sandal", "sneaker", "footwear", "bag"]
    expected = {"concept_names": names, "splits": {}}
    with h5py.File(path, "w") as f:
        if str_kind == "vlen":
            sdt = h5py.string_dtype("utf-8")
        else:
            sdt = "S40"
        f.create_dataset("concept_names", data=np.array(names, dtype=object if str_kind == "vlen" else sdt), dtype=sdt)
        if parents:
            f.create_dataset("concept_parent", data=np.array([2, 2, -1, -1], dtype="int32"))
            expected["concept_parent"] = [2, 2, -1, -1]
        for split, n in (("train", 7), ("test", 3)):
            g = f.create_group(split)
            images = rng.integers(0, 256, size=(n, 6, 5, 3), dtype=np.uint8)
            caps = [f"a photo of item {i} in {split}" + (" \u00e9t\u00e9" if i % 2 else "") for i in range(n)]
            if str_kind != "vlen":
                caps = [c.encode("ascii", "ignore").decode() for c in caps]
            concept = np.array([i % 4 - (1 if i == n - 1 else 0) for i in range(n)], dtype=concept_dtype)
            g.create_dataset("images", data=images, chunks=(2, 6, 5, 3))
            g.create_dataset("captions", data=np.array(caps, dtype=object if str_kind == "vlen" else sdt), dtype=sdt)
            g.create_dataset("concept", data=concept)
            expected["splits"][split] = {
                "images": images.reshape(-1).tolist(),
                "shape": list(images.shape),
                "captions": caps,
                "concept": concept.astype(int).tolist(),
            }
    return expected


def good_jpeg(path):
    """The JPEG storage's layout (bytes back to back, sizes, the decoded shape). The bytes only
    start like JPEGs: opening a file checks the layout, decoding happens when rows are read."""
    with h5py.File(path, "w") as f:
        f.create_dataset("concept_names", data=np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())
        for split, n in (("train", 5), ("test", 2)):
            g = f.create_group(split)
            rows = [b"\xff\xd8\xff" + bytes([i]) * (10 + i) for i in range(n)]
            g.create_dataset("jpeg", data=np.frombuffer(b"".join(rows), dtype="uint8"), chunks=(16,))
            g.create_dataset("jpeg_size", data=np.array([len(r) for r in rows], dtype="int64"))
            g.create_dataset("image_shape", data=np.array([8, 8, 3], dtype="int32"))
            g.create_dataset("captions", data=np.array([f"row {i}" for i in range(n)], dtype=object),
                             dtype=h5py.string_dtype())
            g.create_dataset("concept", data=np.array([i % 2 for i in range(n)], dtype="int32"))


def broken(out):
    """Each variant breaks one rule; the value is the text the error must contain."""
    cases = {}

    def variant(name, mutate, must_name, base=good):
        path = os.path.join(out, f"broken_{name}.h5")
        base(path)
        with h5py.File(path, "a") as f:
            mutate(f)
        cases[os.path.basename(path)] = must_name

    variant("missing_captions", lambda f: f["train"].__delitem__("captions"), "/train/captions")
    variant("float_images", lambda f: (f["test"].__delitem__("images"),
                                       f["test"].create_dataset("images", data=np.zeros((3, 6, 5, 3), "float32"))),
            "/test/images")
    variant("rank3_images", lambda f: (f["train"].__delitem__("images"),
                                       f["train"].create_dataset("images", data=np.zeros((7, 6, 5), "uint8"))),
            "/train/images")
    variant("length_mismatch", lambda f: (f["train"].__delitem__("concept"),
                                          f["train"].create_dataset("concept", data=np.zeros(6, "int32"))),
            "/train/concept")
    variant("concept_out_of_range", lambda f: f["test/concept"].__setitem__(0, 9), "/test/concept")
    variant("parent_cycle", lambda f: f["concept_parent"].__setitem__(2, 0), "cycle")
    variant("no_concept_names", lambda f: f.__delitem__("concept_names"), "/concept_names")
    variant("two_channel", lambda f: (f["train"].__delitem__("images"),
                                      f["train"].create_dataset("images", data=np.zeros((7, 6, 5, 2), "uint8"))),
            "/train/images")

    def jpeg_variant(name, mutate, must_name):
        variant("jpeg_" + name, mutate, must_name, base=good_jpeg)

    jpeg_variant("sizes_do_not_sum", lambda f: f["train/jpeg_size"].__setitem__(0, 3), "/train/jpeg_size")
    jpeg_variant("zero_size", lambda f: (f["test/jpeg_size"].__setitem__(0, 0),
                                         f["test/jpeg_size"].__setitem__(1, 25)), "/test/jpeg_size")
    jpeg_variant("no_shape", lambda f: f["test"].__delitem__("image_shape"), "/test/image_shape")
    jpeg_variant("two_channel_shape", lambda f: f["train/image_shape"].__setitem__(2, 2), "/train/image_shape")
    jpeg_variant("caption_count", lambda f: (f["train"].__delitem__("captions"),
                                             f["train"].create_dataset("captions", data=np.array(["x"], dtype=object),
                                                                       dtype=h5py.string_dtype())),
                 "/train/captions")
    return cases


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {
        "good_vlen.h5": good(os.path.join(out, "good_vlen.h5")),
        "good_fixed_int64.h5": good(os.path.join(out, "good_fixed_int64.h5"), str_kind="fixed",
                                    concept_dtype="int64", parents=False),
    }
    good_jpeg(os.path.join(out, "good_jpeg.h5"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"good": expected, "broken": broken(out)}, f)


if __name__ == "__main__":
    main(sys.argv[1])
