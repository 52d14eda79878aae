"""External check: a hac model run by the reference MERU code's own model classes.

Loads a finished hac run's model.pt (torch.load with weights_only=True) into `meru.models.MERU`
(or `CLIPBaseline`) with MERU's `TransformerTextEncoder` and an image encoder made by MERU's
`build_timm_vit` (timm's VisionTransformer, as MERU builds it), encodes the run's evaluated rows
of the dataset, builds the zero-shot classifier the way MERU's ZeroShotClassificationEvaluator
does (prompt features averaged in the tangent space, scaled by exp(textual_alpha), exp_map0;
CLIP: normalize, average, normalize) and compares with the run's eval side files:

  eval/samples.csv     zero-shot prediction and own-pair score (MERU -d, CLIP cosine) per row
  eval/embeddings.csv  image and caption embeddings of the sampled rows (model "after")

usage: meru_peer.py --meru MERU_SRC RUN_DIR [--model FILE] [--data FILE] [--json OUT]
         [--embed-tol 1e-5] [--score-tol 1e-4] [--tie-tol 1e-5]

MERU_SRC is a checkout of facebookresearch/meru; its Python needs torch, timm (with torchvision)
and loguru. Prints the figures and exits 1 when an embedding or score differs by more than its
tolerance or a prediction differs where MERU's own two top scores are not a tie (within
--tie-tol), 2 on usage or setup errors. Pixels are the dataset's uint8 / 255 (MERU's
ToTensor); the word tokenizer a hac run records in its checkpoint is applied here with the same
cleaning and split; a run using CLIP's BPE is tokenized by MERU's own Tokenizer.
"""
import argparse
import csv
import html
import json
import math
import os
import sys


def fail_setup(msg):
    print(f"meru_peer: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--meru", required=True, help="checkout of facebookresearch/meru")
    p.add_argument("--model", help="the checkpoint (default: RUN_DIR/model.pt)")
    p.add_argument("--data", help="the dataset file (default: data.file of the run's config)")
    p.add_argument("--json", help="write the figures here as JSON")
    p.add_argument("--embed-tol", type=float, default=1e-5)
    p.add_argument("--score-tol", type=float, default=1e-4)
    p.add_argument("--tie-tol", type=float, default=1e-5)
    return p.parse_args(argv)


class WordTokens:
    """hac's word tokenizer (WordTokenizer in src/models/tokenizer.h) from its recorded text:
    CLIP's cleaning (html.unescape twice, whitespace collapsed, stripped, lower-cased) and split
    pattern; id 0 padding, 1 unknown, words from 2, then start = V-2 and end = V-1."""

    PATTERN = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"

    def __init__(self, text):
        import regex
        lines = text.split("\n")
        if lines[0] != "hac-word-tokenizer 1" or not lines[1].startswith("words "):
            fail_setup("the checkpoint's extras/tokenizer is not a hac word vocabulary")
        n = int(lines[1][6:])
        words = lines[2:2 + n]
        self.ids = {w: 2 + i for i, w in enumerate(words)}
        self.vocab = n + 4
        self.split = regex.compile(self.PATTERN, regex.IGNORECASE)
        self.space = regex.compile(r"\s+")

    def __call__(self, text):
        t = html.unescape(html.unescape(text))
        t = self.space.sub(" ", t).strip().lower()
        sot, eot = self.vocab - 2, self.vocab - 1
        out = [sot]
        for piece in self.split.findall(t):
            out.append({"<|startoftext|>": sot, "<|endoftext|>": eot}.get(piece, self.ids.get(piece, 1)))
        return out + [eot]


def allow_float32_autocast_on_cpu(torch):
    """MERU lifts embeddings under `torch.autocast(device, dtype=torch.float32)`. PyTorch 1.13
    refuses that dtype on CPU (later versions accept it); the model already runs in float32
    there, so on such a version the context is made a no-op."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.autocast("cpu", dtype=torch.float32):
                pass
    except RuntimeError:
        class NoAutocast:
            def __init__(self, *args, **kwargs):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False
        torch.autocast = NoAutocast


def build_model(sd, extras, torch, nn, meru_models, text_encoders, image_encoders, timm):
    """MERU / CLIPBaseline with the run's sizes, through MERU's own constructors."""
    patch_w = sd["visual.patch_embed.proj.weight"]
    width, chans, patch = patch_w.shape[0], patch_w.shape[1], patch_w.shape[2]
    grid = int(round(math.sqrt(sd["visual.pos_embed"].shape[1] - 1)))
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("visual.blocks."))
    t_vocab, t_width = sd["textual.token_embed.weight"].shape
    context = sd["textual.posit_embed"].shape[0]
    t_depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("textual.resblocks."))
    embed = sd["visual_proj.weight"].shape[0]
    heads = int(extras.get("vision_heads", width // 64))
    t_heads = int(extras.get("text_heads", t_width // 64))
    arch = f"vit_hac_peer_w{width}_d{depth}_h{heads}_p{patch}_i{grid * patch}_c{chans}"

    if arch not in timm.list_models("vit_*"):
        def create(**kwargs):  # registered like MERU's own vit_small_mocov3_patch16_224
            return timm.models.vision_transformer._create_vision_transformer(
                "vit_small_patch16_224", patch_size=patch, img_size=grid * patch, in_chans=chans,
                embed_dim=width, depth=depth, num_heads=heads, **kwargs)
        create.__name__ = arch
        timm.models.register_model(create)
    visual = image_encoders.build_timm_vit(arch)
    textual = text_encoders.TransformerTextEncoder(f"L{t_depth}_W{t_width}_A{t_heads}", t_vocab, context)
    stats = dict(pixel_mean=tuple(sd["pixel_mean"].flatten().tolist()),
                 pixel_std=tuple(sd["pixel_std"].flatten().tolist()))
    if "curv" in sd:
        model = meru_models.MERU(visual, textual, embed_dim=embed,
                                 curv_init=float(extras.get("curv_init", 1.0)), **stats)
    else:
        model = meru_models.CLIPBaseline(visual, textual, embed_dim=embed, **stats)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        fail_setup(f"state dict does not map onto MERU's classes: missing {missing}, unexpected {unexpected}")
    return model.eval()


def main(argv):
    args = parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.meru))
    try:
        import h5py
        import torch
        import timm
        from torch import nn
        from torch.nn import functional as F
        import yaml
        from meru import lorentz as L
        from meru import models as meru_models
        from meru.encoders import image_encoders, text_encoders
    except ImportError as e:
        fail_setup(f"cannot import what the check needs ({e}); MERU's code needs torch, timm, torchvision, "
                   "loguru; the check also h5py and PyYAML")
    torch.set_grad_enabled(False)
    allow_float32_autocast_on_cpu(torch)

    run = args.run_dir
    ckpt = torch.load(args.model or os.path.join(run, "model.pt"), weights_only=True)
    sd, extras = ckpt["model"], ckpt["extras"]
    # The run's resolved config (templates, split, data file of the evaluation that wrote the
    # side files), else the one recorded in the checkpoint.
    cfg_path = os.path.join(run, "config.yaml")
    cfg = yaml.safe_load(open(cfg_path).read() if os.path.exists(cfg_path) else ckpt["config"])
    model = build_model(sd, extras, torch, nn, meru_models, text_encoders, image_encoders, timm)
    is_meru = isinstance(model, meru_models.MERU)
    curv = model.curv.exp() if is_meru else None

    if cfg["data"]["tokenizer"] == "word":
        tokenize = WordTokens(extras["tokenizer"])
    else:
        from meru.tokenizer import Tokenizer
        meru_tok = Tokenizer()
        tokenize = lambda text: meru_tok(text).tolist()  # noqa: E731

    with open(os.path.join(run, "eval", "samples.csv")) as f:
        samples = list(csv.DictReader(f))
    rows = [int(r["row"]) for r in samples]
    split = cfg["eval"]["split"]
    data_file = args.data or cfg["data"]["file"]
    with h5py.File(data_file, "r") as h5:
        names = [n.decode() if isinstance(n, bytes) else n for n in h5["concept_names"][:]]
        concepts = h5[f"{split}/concept"][:]
        images = h5[f"{split}/images"][sorted(set(rows))]
        pos = {r: i for i, r in enumerate(sorted(set(rows)))}
        images = images[[pos[r] for r in rows]]
        captions = [c.decode() if isinstance(c, bytes) else c for c in h5[f"{split}/captions"][sorted(set(rows))]]
        captions = [captions[pos[r]] for r in rows]

    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    tokens = [torch.tensor(tokenize(c), dtype=torch.long) for c in captions]
    img_emb, txt_emb = [], []
    for b in range(0, len(rows), 256):
        img_emb.append(model.encode_image(pixels[b:b + 256], project=True))
        txt_emb.append(model.encode_text(tokens[b:b + 256], project=True))
    img_emb, txt_emb = torch.cat(img_emb), torch.cat(txt_emb)

    # Zero-shot classifier over the concepts present in the split, as MERU's evaluator builds it.
    candidates = sorted({int(c) for c in concepts if c >= 0})
    templates = cfg["eval"]["templates"]
    feats = []
    for c in candidates:
        f = model.encode_text([torch.tensor(tokenize(t.replace("{}", names[c])), dtype=torch.long)
                               for t in templates], project=False)
        if is_meru:
            feats.append(L.exp_map0(f.mean(dim=0) * model.textual_alpha.exp(), curv))
        else:
            feats.append(F.normalize(F.normalize(f, dim=-1).mean(dim=0), dim=-1))
    classifier = torch.stack(feats)
    scores = L.pairwise_inner(img_emb, classifier, curv) if is_meru else img_emb @ classifier.T
    top2 = scores.topk(2, dim=1)
    pred = [candidates[i] for i in top2.indices[:, 0].tolist()]
    margin = (top2.values[:, 0] - top2.values[:, 1]).tolist()

    # Own-pair scores: MERU -d(img, txt), CLIP cosine.
    if is_meru:
        pair = torch.cat([-L.pairwise_dist(img_emb[b:b + 256], txt_emb[b:b + 256], curv).diagonal()
                          for b in range(0, len(rows), 256)])
    else:
        pair = (img_emb * txt_emb).sum(dim=1)

    hac_pred = [int(r["zs_pred"]) for r in samples]
    hac_score = torch.tensor([float(r["score"]) for r in samples], dtype=torch.float64)
    differ = [i for i in range(len(rows)) if pred[i] != hac_pred[i]]
    ties = [i for i in differ if margin[i] <= args.tie_tol]
    score_err = (pair.double() - hac_score).abs().max().item()

    index = {r: i for i, r in enumerate(rows)}
    embed_err = {"image": 0.0, "text": 0.0}
    embedded = 0
    with open(os.path.join(run, "eval", "embeddings.csv")) as f:
        for r in csv.DictReader(f):
            if r["model"] != "after":
                continue
            mine = (img_emb if r["modality"] == "image" else txt_emb)[index[int(r["row"])]]
            theirs = torch.tensor([float(r[f"e{d}"]) for d in range(mine.numel())], dtype=torch.float64)
            embed_err[r["modality"]] = max(embed_err[r["modality"]], (mine.double() - theirs).abs().max().item())
            embedded += 1

    def per_class(p):
        out = {}
        for c in candidates:
            idx = [i for i in range(len(rows)) if int(concepts[rows[i]]) == c]
            out[names[c]] = round(100.0 * sum(p[i] == c for i in idx) / max(1, len(idx)), 2)
        return out

    figures = {
        "rows": len(rows), "model": "meru" if is_meru else "clip", "timm": timm.__version__,
        "torch": torch.__version__, "prediction_differences": len(differ), "of_which_ties": len(ties),
        "max_pair_score_diff": score_err, "embedding_rows": embedded // 2,
        "max_image_embedding_diff": embed_err["image"], "max_text_embedding_diff": embed_err["text"],
        "top1_meru": round(100.0 * sum(pred[i] == int(concepts[rows[i]]) for i in range(len(rows))) / len(rows), 2),
        "top1_hac": round(100.0 * sum(hac_pred[i] == int(concepts[rows[i]]) for i in range(len(rows))) / len(rows), 2),
        "per_class_meru": per_class(pred), "per_class_hac": per_class(hac_pred),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    problems = []
    if len(differ) > len(ties):
        problems.append(f"{len(differ) - len(ties)} zero-shot predictions differ (not ties), e.g. rows "
                        f"{[rows[i] for i in differ if i not in ties][:5]}")
    if score_err > args.score_tol:
        problems.append(f"pair scores differ by up to {score_err:.3g} (tolerance {args.score_tol})")
    for m, e in embed_err.items():
        if e > args.embed_tol:
            problems.append(f"{m} embeddings differ by up to {e:.3g} (tolerance {args.embed_tol})")
    if embedded == 0:
        problems.append("eval/embeddings.csv has no 'after' rows to compare")
    for p in problems:
        print(f"MISMATCH: {p}", file=sys.stderr)
    if not problems:
        print(f"MERU's code and hac agree on {len(rows)} rows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
