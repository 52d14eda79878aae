"""Writes torch.save files in the layout of the released MERU/CLIP checkpoints, plus side files of
expected values, for the C++ checkpoint reader's tests (run by CTest with Debian's python3-torch).

usage: gen_checkpoint_fixtures.py OUT_DIR          all fixtures into OUT_DIR
       gen_checkpoint_fixtures.py --tiny FILE      the small released-layout file the fuzz tests use
                                                   (data/released_layout_tiny.pt.bin, committed)

Side files `<name>_expected.pt` are plain dicts {path: tensor} that LibTorch's own
torch::pickle_load reads, so the C++ test compares against an independent reader. A path joins
dict keys and list/tuple indices with "/" ("model/visual.cls_token", "optimizer/state/0/exp_avg");
"<path>#stride" and "<path>#offset" hold the view geometry the reader must reproduce.
"""
import collections
import math
import os
import sys
import zipfile

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)


class Mlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width)


class PatchEmbed(nn.Module):
    def __init__(self, width, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch, stride=patch)


class VisionTransformer(nn.Module):
    def __init__(self, width, depth, patch, image):
        super().__init__()
        grid = image // patch
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        # MERU's sin-cos position embedding is a frozen parameter, saved with the others.
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, width), requires_grad=False)
        self.patch_embed = PatchEmbed(width, patch)
        self.blocks = nn.ModuleList([Block(width) for _ in range(depth)])
        # MERU builds timm's ViT with norm_layer=nn.LayerNorm: PyTorch's default eps everywhere.
        self.norm = nn.LayerNorm(width)


class TextMlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)


class ResidualBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, max(1, width // 64))
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = TextMlp(width)
        self.ln_2 = nn.LayerNorm(width)


class TextTransformer(nn.Module):
    def __init__(self, width, depth, vocab, context):
        super().__init__()
        self.posit_embed = nn.Parameter(torch.randn(context, width) * 0.01)
        self.register_buffer("attn_mask", torch.ones(context, context, dtype=torch.bool).triu(1))
        self.token_embed = nn.Embedding(vocab, width)
        self.resblocks = nn.ModuleList([ResidualBlock(width) for _ in range(depth)])
        self.ln_final = nn.LayerNorm(width)


class ContrastiveLike(nn.Module):
    """State-dict names of MERU (meru=True) or its CLIP baseline."""

    def __init__(self, meru, v_width, v_depth, patch, image, t_width, t_depth, vocab, context, embed):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        if meru:
            self.curv = nn.Parameter(torch.tensor(math.log(0.7)))
            self.visual_alpha = nn.Parameter(torch.tensor(math.log(embed ** -0.5)))
            self.textual_alpha = nn.Parameter(torch.tensor(math.log(embed ** -0.5)))
        self.register_buffer("pixel_mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
        self.visual = VisionTransformer(v_width, v_depth, patch, image)
        self.textual = TextTransformer(t_width, t_depth, vocab, context)
        self.visual_proj = nn.Linear(v_width, embed, bias=False)
        self.textual_proj = nn.Linear(t_width, embed, bias=False)


def released_layout(meru, sizes):
    """{"model", "optimizer", "scheduler", "scaler"} as MERU's trainer saves them."""
    model = ContrastiveLike(meru, **sizes)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 10))
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    sched.step()
    ckpt = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": torch.cuda.amp.GradScaler(enabled=False).state_dict(),
    }
    if not meru:
        ckpt["root"] = torch.randn(512)
    return ckpt


def vit_forward(vit, heads, pixels):
    """The CLS feature of timm's VisionTransformer forward (MERU's settings: class token, no
    pre-norm, final norm, no head), written out with plain torch ops."""
    x = vit.patch_embed.proj(pixels).flatten(2).transpose(1, 2)
    x = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + vit.pos_embed
    for blk in vit.blocks:
        h = blk.norm1(x)
        b, n, c = h.shape
        qkv = blk.attn.qkv(h).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
        x = x + blk.attn.proj((att @ v).transpose(1, 2).reshape(b, n, c))
        x = x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(x))))
    return vit.norm(x)[:, 0]


def vit_reference():
    """A ViT in MERU's layout, its input and its float64 CLS feature. Activations are kept small
    (variance ~1e-6, as LayerNorm inputs can be in trained models) so that the LayerNorm eps moves
    the output by far more than rounding: a reader with eps 1e-6 instead of 1e-5 is caught."""
    width, heads, patch, image = 64, 4, 8, 16
    vit = VisionTransformer(width, 2, patch, image).double()
    with torch.no_grad():
        vit.patch_embed.proj.weight.mul_(0.001)
        vit.patch_embed.proj.bias.mul_(0.001)
        vit.cls_token.copy_(torch.randn_like(vit.cls_token) * 1e-3)
        vit.pos_embed.copy_(torch.randn_like(vit.pos_embed) * 1e-3)
        for m in vit.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(0.01 * (1 + 0.1 * torch.randn_like(m.weight)))
                m.bias.copy_(1e-3 * torch.randn_like(m.bias))
        pixels = torch.randn(3, 3, image, image, dtype=torch.float64)
        feature = vit_forward(vit, heads, pixels)
    state = collections.OrderedDict((f"visual.{k}", v) for k, v in vit.state_dict().items())
    return {"model": state, "pixels": pixels, "feature": feature,
            "sizes": {"width": width, "depth": 2, "heads": heads, "patch": patch, "image": image}}


def view_zoo():
    """Every dtype torch.save writes, views with offsets/strides/shared storage, python scalars."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "float_base": base,
        "float_t": base.t(),
        "float_slice": base[1:3, ::2],
        "expanded": torch.tensor([1.5, -2.5]).expand(3, 2),
        "double": torch.tensor([math.pi, -0.0, 1e300], dtype=torch.float64),
        "half": torch.tensor([[0.5, -1.0, 65504.0], [1e-3, 2.0, -3.0]], dtype=torch.float16),
        "bfloat16": torch.linspace(-2, 2, 5).to(torch.bfloat16),
        "int64": torch.tensor([-(2 ** 62), 0, 2 ** 62]),
        "int32": torch.tensor([-5, 7], dtype=torch.int32),
        "int16": torch.tensor([-300, 300], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "param": nn.Parameter(torch.ones(2)),
        "nested": {"list": [1, -2, 3.25, "text", None, True, False, 2 ** 40, -(2 ** 40)],
                   "tuple": (1, "a", torch.ones(1)),
                   "unicode": "ünïcode ✓"},
        "int_keys": {0: torch.zeros(1), 7: torch.ones(1)},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "empty_dict": {},
        "empty_list": [],
        "big": 2 ** 62,
        "neg": -1,
        "float": -0.1,
    }


def flatten(obj, prefix, out):
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        out[prefix] = t.clone().contiguous()
        out[prefix + "#stride"] = torch.tensor(list(t.stride()), dtype=torch.int64)
        out[prefix + "#offset"] = torch.tensor([t.storage_offset()], dtype=torch.int64)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}/{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}/{i}" if prefix else str(i), out)


def save_with_expected(obj, out_dir, name, **save_kwargs):
    torch.save(obj, os.path.join(out_dir, name + ".pt"), **save_kwargs)
    expected = {}
    flatten(obj, "", expected)
    torch.save(expected, os.path.join(out_dir, name + "_expected.pt"))


def rezip_as_zip64(src, dst):
    """The same records with zip64 sizes and offsets, as miniz writes for files over 4 GiB."""
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 1  # every size and offset now "exceeds" the limit
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT = saved


MERU_SIZES = dict(v_width=64, v_depth=2, patch=8, image=32, t_width=64, t_depth=2, vocab=100,
                  context=8, embed=16)
TINY_SIZES = dict(v_width=4, v_depth=1, patch=2, image=4, t_width=4, t_depth=1, vocab=6,
                  context=3, embed=2)


def main(argv):
    torch.manual_seed(0)
    if len(argv) == 3 and argv[1] == "--tiny":
        torch.save(released_layout(True, TINY_SIZES), argv[2])
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    save_with_expected(released_layout(True, MERU_SIZES), out, "meru_like")
    save_with_expected(released_layout(False, MERU_SIZES), out, "clip_like")
    rezip_as_zip64(os.path.join(out, "meru_like.pt"), os.path.join(out, "meru_like_zip64.pt"))
    torch.save(vit_reference(), os.path.join(out, "vit_reference.pt"))
    zoo = view_zoo()
    save_with_expected(zoo, out, "views")
    torch.save(zoo, os.path.join(out, "views_protocol4.pt"), pickle_protocol=4)
    # Released checkpoints were saved from GPUs: their storages say "cuda:0".
    location_tag = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        torch.save(zoo, os.path.join(out, "views_cuda.pt"))
    finally:
        torch.serialization.location_tag = location_tag
    # A pickle that would run code on load, which the reader must refuse.
    torch.save({"weights": torch.ones(2), "evil": collections.Counter("ab")},
               os.path.join(out, "foreign_global.pt"))
    print(f"checkpoint fixtures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
