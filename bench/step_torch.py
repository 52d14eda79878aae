#!/usr/bin/python3
"""PyTorch (Python) peer of `hac bench step`: one CLIP/MERU training step, timed.

Mirrors op for op the C++ for the "tiny" preset, so docs/benchmarks.md can report the
C++/Python speed ratio for the same model, batch and threads: src/models/encoders.* (ViT 28x28x1,
patch 7, width 64, depth 3, 4 heads, MLP 4x, CLS, fixed 2-D sin-cos positions, pre-LN, final LN,
eps 1e-6; causal text transformer, vocab 512, context 32, width 64, depth 3, 4 heads, eps 1e-5,
pooled at the argmax token; attention = matmul + softmax, the LibTorch 1.13 branch of
`attention()`), src/models/contrastive_model.* (projections, logit_scale, MERU curv/alphas,
in-place clamps, pixel normalization, CLIP L2 / MERU exp_map0), src/geometry/lorentz.*,
src/losses/contrastive.* (1-rank all-gather = clone; MERU adds 0.2 * entailment),
src/app/app_bench_work.cpp run_bench_step (seed 0; fixed rand pixels [B,1,28,28], randint(1, 511)
tokens [B,16]; a timed step is zero_grad (zeroing, as LibTorch 1.13), encode, loss, backward,
(1-rank no-op all-reduce), AdamW step) and src/core/allocator.cpp (hac's start-up mallopt:
M_MMAP_THRESHOLD 1 GiB, M_TRIM_THRESHOLD 2047 MiB; HAC_MALLOC_TUNE=0 keeps glibc's defaults).
Optimizer: MERU's recipe, AdamW(lr 1e-4, betas (0.9, 0.98), eps 1e-8, wd 0.2), no decay on
logit_scale, curv, the alphas, biases and LayerNorm gains/biases (= the params with ndim <= 1).
Names = the C++ (MERU) state-dict names; seed 0 draws weights and inputs in the C++ order, so
the losses equal the C++ model's (checked to 6 decimals, 3 steps at --batch 16).
Parameters: vision 153,344 (+1,088 frozen pos_embed), text 184,896, projections 2 x 4,096,
logit_scale 1 (+3 MERU scalars): CLIP 346,433 trainable, MERU 346,436 (347,521 / 347,524 in all).
Run with Debian's interpreter (python3-torch 1.13, the LibTorch the C++ build links):
  /usr/bin/python3 bench/step_torch.py --kind meru --batch 128 --steps 20 --warmup 3 --threads 2
  /usr/bin/python3 bench/step_torch.py --kind clip --threads 1 --json /tmp/clip_t1.json  # + a JSON file
"""
import argparse, ctypes, json, math, os, time  # noqa: E401
import torch
from torch import nn
from torch.nn import functional as F

EPS, MIN_RADIUS, ENTAIL_WEIGHT = 1e-8, 0.1, 0.2  # lorentz.h kEps, kMinRadius; MERU's loss weight
EXPECTED_PARAMS = {"clip": 346433, "meru": 346436}  # trainable, counted from the C++ (see above)

def sincos_pos_embed_2d(grid, width):
    omega = 1.0 / torch.pow(10000.0, torch.arange(width // 4, dtype=torch.float) / float(width // 4))
    t = torch.arange(grid * grid)
    a = torch.div(t, grid, rounding_mode="floor").float().unsqueeze(1) * omega.unsqueeze(0)
    b = torch.remainder(t, grid).float().unsqueeze(1) * omega.unsqueeze(0)
    patches = torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], dim=1)  # CLS position: zeros
    return torch.cat([torch.zeros(1, width), patches], dim=0).unsqueeze(0)

def attention(q, k, v, causal):  # [B, H, L, Dh]; the LibTorch 1.13 branch of encoders.cpp
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    if causal:
        n = q.size(-2)
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return torch.matmul(torch.softmax(scores, -1), v)

def split_heads(qkv, heads):  # [B, L, 3W] -> q, k, v [B, H, L, Dh]
    b, n, w = qkv.size(0), qkv.size(1), qkv.size(2) // 3
    x = qkv.view(b, n, 3, heads, w // heads).permute(2, 0, 3, 1, 4)
    return x[0], x[1], x[2]

def merge_heads(x):  # [B, H, L, Dh] -> [B, L, H*Dh]
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), x.size(1) * x.size(3))

class Mlp(nn.Module):
    def __init__(self, width, hidden, in_name, out_name):
        super().__init__()
        self.names = (in_name, out_name)
        self.add_module(in_name, nn.Linear(width, hidden))
        self.add_module(out_name, nn.Linear(hidden, width))

    def forward(self, x):
        return getattr(self, self.names[1])(F.gelu(getattr(self, self.names[0])(x)))

class VitAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x):
        q, k, v = split_heads(self.qkv(x), self.heads)
        return self.proj(merge_heads(attention(q, k, v, causal=False)))

class VitBlock(nn.Module):
    def __init__(self, width, heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = VitAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, width * mlp_ratio, "fc1", "fc2")

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.mlp(self.norm2(h))

class VisionTransformer(nn.Module):
    def __init__(self, image=28, patch=7, channels=1, width=64, depth=3, heads=4, mlp_ratio=4, eps=1e-6):
        super().__init__()
        self.width = width
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(channels, width, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(sincos_pos_embed_2d(image // patch, width), requires_grad=False)
        self.blocks = nn.ModuleList([VitBlock(width, heads, mlp_ratio, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=eps)
        with torch.no_grad():  # timm-style init, in the C++ constructor's order
            nn.init.normal_(self.cls_token, 0.0, 1e-6)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 0.02).clamp_(-0.04, 0.04)
                    nn.init.zeros_(m.bias)

    def forward(self, pixels):
        x = self.patch_embed.proj(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.size(0), 1, self.width), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x).select(1, 0)

class TextBlock(nn.Module):
    def __init__(self, width, heads, eps):
        super().__init__()
        self.heads = heads
        self.attn = nn.Module()  # nn.MultiheadAttention's layout
        self.attn.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.attn.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.attn.out_proj = nn.Linear(width, width)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, 4 * width, "c_fc", "c_proj")
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x):
        qkv = F.linear(self.ln_1(x), self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = split_heads(qkv, self.heads)
        h = x + self.attn.out_proj(merge_heads(attention(q, k, v, causal=True)))
        return h + self.mlp(self.ln_2(h))

class TextTransformer(nn.Module):
    def __init__(self, vocab=512, context=32, width=64, depth=3, heads=4, eps=1e-5):
        super().__init__()
        self.token_embed = nn.Embedding(vocab, width)
        self.posit_embed = nn.Parameter(torch.empty(context, width))
        self.register_buffer("attn_mask", torch.ones(context, context, dtype=torch.bool).triu(1))
        self.resblocks = nn.ModuleList([TextBlock(width, heads, eps) for _ in range(depth)])
        self.ln_final = nn.LayerNorm(width, eps=eps)
        with torch.no_grad():  # MERU/CLIP init, in the C++ constructor's order
            attn_std, proj_std = width ** -0.5, width ** -0.5 * (2.0 * depth) ** -0.5
            nn.init.normal_(self.token_embed.weight, 0.0, 0.02)
            nn.init.normal_(self.posit_embed, 0.0, 0.01)
            for blk in self.resblocks:
                nn.init.normal_(blk.attn.in_proj_weight, 0.0, attn_std)
                nn.init.normal_(blk.attn.out_proj.weight, 0.0, proj_std)
                nn.init.zeros_(blk.attn.out_proj.bias)
                nn.init.normal_(blk.mlp.c_fc.weight, 0.0, (2.0 * width) ** -0.5)
                nn.init.normal_(blk.mlp.c_proj.weight, 0.0, proj_std)

    def forward(self, tokens):
        x = self.token_embed(tokens) + self.posit_embed.narrow(0, 0, tokens.size(1))
        for blk in self.resblocks:
            x = blk(x)
        return self.ln_final(x)[torch.arange(x.size(0)), tokens.argmax(dim=-1)]  # at the end token

# Lorentz geometry (curv: 0-dim tensor c > 0), as src/geometry/lorentz.cpp.
def _time(x, curv):
    return torch.sqrt(1.0 / curv + (x * x).sum(-1, keepdim=True))

def _norm(x):
    return torch.linalg.vector_norm(x, ord=2, dim=-1, keepdim=True)

def exp_map0(v, curv):
    rc_xnorm = torch.sqrt(curv) * _norm(v)
    sinh_input = torch.clamp(rc_xnorm, EPS, math.asinh(2.0 ** 15))
    return torch.sinh(sinh_input) * v / torch.clamp_min(rc_xnorm, EPS)

def pairwise_dist(x, y, curv):
    inner = torch.matmul(x, y.t()) - torch.matmul(_time(x, curv), _time(y, curv).t())
    return torch.acosh(torch.clamp_min(-curv * inner, 1.0 + EPS)) / torch.sqrt(curv)

def half_aperture(x, curv):
    asin_input = 2.0 * MIN_RADIUS / (_norm(x).squeeze(-1) * torch.sqrt(curv) + EPS)
    return torch.asin(torch.clamp(asin_input, -1.0 + EPS, 1.0 - EPS))

def oxy_angle(x, y, curv):
    x_time, y_time = _time(x, curv).squeeze(-1), _time(y, curv).squeeze(-1)
    c_xyl = curv * ((x * y).sum(-1) - x_time * y_time)
    acos_denom = torch.sqrt(torch.clamp_min(c_xyl * c_xyl - 1.0, EPS))
    acos_input = (y_time + c_xyl * x_time) / (_norm(x).squeeze(-1) * acos_denom + EPS)
    return torch.acos(torch.clamp(acos_input, -1.0 + EPS, 1.0 - EPS))

class ContrastiveModel(nn.Module):
    def __init__(self, kind, embed_dim=64, curv_init=1.0):
        super().__init__()
        self.meru = kind == "meru"
        self.visual, self.textual = VisionTransformer(), TextTransformer()
        self.visual_proj = nn.Linear(64, embed_dim, bias=False)
        self.textual_proj = nn.Linear(64, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / 0.07)))
        if self.meru:
            self.curv = nn.Parameter(torch.tensor(math.log(curv_init)))
            self.curv_range = (math.log(curv_init / 10.0), math.log(curv_init * 10.0))
            self.visual_alpha = nn.Parameter(torch.tensor(math.log(embed_dim ** -0.5)))
            self.textual_alpha = nn.Parameter(torch.tensor(math.log(embed_dim ** -0.5)))
        self.register_buffer("pixel_mean", torch.tensor([0.286]).view(1, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([0.353]).view(1, 1, 1))
        with torch.no_grad():
            nn.init.normal_(self.visual_proj.weight, 0.0, 64 ** -0.5)
            nn.init.normal_(self.textual_proj.weight, 0.0, 64 ** -0.5)

    def clamp_parameters(self):  # in place, without grad, before each encode (as MERU's forward)
        with torch.no_grad():
            self.logit_scale.clamp_(max=math.log(100.0))
            if self.meru:
                self.curv.clamp_(*self.curv_range)
                self.visual_alpha.clamp_(max=0.0)
                self.textual_alpha.clamp_(max=0.0)

    def curvature(self):
        return self.curv.exp() if self.meru else torch.ones(())

    def _embed(self, projected, alpha):
        if not self.meru:
            return F.normalize(projected, dim=-1)
        return exp_map0(projected.float() * getattr(self, alpha).exp(), self.curvature())

    def encode_image(self, pixels):
        self.clamp_parameters()
        f = self.visual((pixels - self.pixel_mean) / self.pixel_std)
        return self._embed(self.visual_proj(f), "visual_alpha")

    def encode_text(self, tokens):
        self.clamp_parameters()
        return self._embed(self.textual_proj(self.textual(tokens)), "textual_alpha")

    def loss(self, img, txt):
        curv = self.curvature()
        sim = (lambda a, b: -pairwise_dist(a, b, curv)) if self.meru else (lambda a, b: a @ b.t())
        all_img, all_txt = img.clone(), txt.clone()  # the 1-rank all_gather_with_grad
        targets, scale = torch.arange(img.size(0)), self.logit_scale.exp()
        ce = lambda logits: F.cross_entropy(logits, targets, reduction="none")  # noqa: E731
        contrastive = (0.5 * (ce(scale * sim(img, all_txt)) + ce(scale * sim(txt, all_img)))).mean()
        if not self.meru:
            return contrastive
        entail = torch.clamp_min(oxy_angle(txt, img, curv) - half_aperture(txt, curv), 0.0).mean()
        return contrastive + ENTAIL_WEIGHT * entail

def param_groups(model, weight_decay):
    """MERU's set_weight_decay_per_param: no decay on the excluded scalars, norms and biases."""
    exclude = {"logit_scale", "curv", "visual_alpha", "textual_alpha"}
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                skip = name in exclude or isinstance(module, nn.LayerNorm) or "bias" in name
                (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

def tune_allocator():
    """As hac's core::tune_allocator: M_MMAP_THRESHOLD (-3) 1 GiB, M_TRIM_THRESHOLD (-1) 2047 MiB."""
    if os.environ.get("HAC_MALLOC_TUNE") == "0":
        return "glibc defaults (HAC_MALLOC_TUNE=0)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, 2047 << 20) == 1
    except (OSError, AttributeError):  # not glibc
        ok = False
    return "large blocks kept on the heap" if ok else "mallopt refused; glibc defaults"

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=["meru", "clip"], default="meru")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args()
    allocator = tune_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ContrastiveModel(args.kind)
    trainable, total = (sum(p.numel() for p in model.parameters() if p.requires_grad or a) for a in (0, 1))
    status = "matches" if trainable == EXPECTED_PARAMS[args.kind] else "DIFFERS FROM"
    print(f"parameters: {trainable} trainable, {total} in all ({status} the C++ count "
          f"{EXPECTED_PARAMS[args.kind]}); allocator: {allocator}")
    opt = torch.optim.AdamW(param_groups(model, 0.2), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)
    pixels, tokens = torch.rand(args.batch, 1, 28, 28), torch.randint(1, 511, (args.batch, 16))
    timed = 0.0
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)  # LibTorch 1.13's zero_grad() zeroes
        loss = model.loss(model.encode_image(pixels), model.encode_text(tokens))
        loss.backward()
        opt.step()  # (the 1-rank all-reduce before it is a no-op)
        if s >= args.warmup:
            timed += time.perf_counter() - t0
        if s == 0:
            print(f"first-step loss: {loss.item():.6f}")
    sps = args.batch * args.steps / timed
    threads = torch.get_num_threads()
    print(f"bench step (python): {args.kind} tiny batch {args.batch}, {threads} torch threads: "
          f"{sps:.1f} samples/s, {args.batch / sps:.3f} s per step")
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps({"kind": args.kind, "batch": args.batch, "threads": threads,
                                "samples_per_s": sps, "s_per_step": args.batch / sps}, indent=2) + "\n")

if __name__ == "__main__":
    main()
