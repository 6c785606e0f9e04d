"""The PyTorch side of `npm run bench -- model` (bench/model.ts runs it with /usr/bin/python3).

The same work as the TypeScript bench, written the way a PyTorch user would: the tiny preset's training step (three
pre-LN Transformers, the heads, NCE + MIL-NCE, Adam), the one-block step (B=8, T=128, D=256, MLP 1024, fwd + bwd +
Adam), a BBS-size video backbone forward (12 layers, D=768, 32x224x224 clip, batch 1, inference) and raw SGEMM on the
shapes those steps use. The caller pins the thread count in the environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
MKL_NUM_THREADS) before this process starts: Debian's torch links a pthreads OpenBLAS that torch.set_num_threads does
not limit.

Usage: torch_model.py CASE ROUNDS  (CASE: probe | gemm | tiny | block | bbs). Prints one JSON object on stdout:
{"ms": [...timed runs...]} for a step, {"gflops": {...}} for gemm, plus the threads torch and its BLAS report.
"""

import json
import os
import sys
import time


def loaded_blas():
    """The BLAS library this process mapped (Debian's python3-torch links libblas.so.3: the reference BLAS unless
    an optimised one such as libopenblas0-pthread is installed), or None off Linux."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    except OSError:
        return None
    return ", ".join(sorted(os.path.realpath(p) for p in paths)) or None


def blas_threads():
    """The BLAS thread count as OpenBLAS reports it, else the environment's pin."""
    import ctypes

    for so in ("libopenblas.so.0", "libblas.so.3"):
        try:
            return int(ctypes.CDLL(so).openblas_get_num_threads())
        except (OSError, AttributeError):
            continue
    v = os.environ.get("OPENBLAS_NUM_THREADS")
    return int(v) if v else None


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    case = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    info = {
        "torch": torch.__version__,
        "torchThreads": torch.get_num_threads(),
        "blasThreads": blas_threads(),
        "blas": loaded_blas(),
    }

    if case == "probe":
        print(json.dumps(info))
        return

    if case == "gemm":
        # (m, k, n, transA, transB): 1024^3 and the block's products (rows = B*T = 1024, D = 256, MLP 1024) forward,
        # input gradient (B transposed) and weight gradient (A transposed).
        shapes = [
            ("1024^3", 1024, 1024, 1024, False, False),
            ("1024x256x256", 1024, 256, 256, False, False),
            ("1024x256x1024", 1024, 256, 1024, False, False),
            ("1024x1024x256", 1024, 1024, 256, False, False),
            ("1024x1024x256 B^T", 1024, 1024, 256, False, True),
            ("256x1024x1024 A^T", 256, 1024, 1024, True, False),
            ("1569x768x3072", 1569, 768, 3072, False, False),
        ]
        res = {}
        for name, m, k, n, ta, tb in shapes:
            a = torch.rand(k, m) - 0.5 if ta else torch.rand(m, k) - 0.5
            b = torch.rand(n, k) - 0.5 if tb else torch.rand(k, n) - 0.5
            aa = a.t() if ta else a
            bb = b.t() if tb else b
            out = torch.empty(m, n)
            reps = max(3, int(2e9 / (2 * m * k * n)))
            ms = timed(lambda: torch.mm(aa, bb, out=out), 2, reps)
            ms.sort()
            res[name] = round(2 * m * k * n / (ms[len(ms) // 2] / 1e3) / 1e9, 2)
        print(json.dumps({**info, "gflops": res}))
        return

    def block_layer(d, mlp, heads):
        return nn.TransformerEncoderLayer(
            d, heads, mlp, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-6
        )

    if case == "block":
        layer = block_layer(256, 1024, 4)
        opt = torch.optim.Adam(layer.parameters(), lr=1e-4)
        x = torch.rand(8, 128, 256) * 2 - 1

        def step():
            opt.zero_grad(set_to_none=True)
            loss = layer(x).square().mean()
            loss.backward()
            opt.step()

        print(json.dumps({**info, "ms": timed(step, 3, rounds)}))
        return

    if case == "bbs":
        # The video backbone of BBS (ViT-Base): 8 x 14 x 14 = 1568 voxels of 4x16x16x3 projected to 768, factorised
        # positional tables, LayerNorm, the aggregation token, 12 pre-LN blocks, the final LayerNorm.
        d, tokens, voxel = 768, 1568, 4 * 16 * 16 * 3
        patch = nn.Linear(voxel, d)
        pos = [nn.Parameter(torch.randn(n, d) * d**-0.5) for n in (8, 14, 14)]
        pos_ln = nn.LayerNorm(d, eps=1e-6)
        agg = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        enc = nn.TransformerEncoder(block_layer(d, 3072, 12), 12, enable_nested_tensor=False)
        final_ln = nn.LayerNorm(d, eps=1e-6)
        for m in (patch, pos_ln, enc, final_ln):
            m.eval()
        video = torch.rand(1, 32, 224, 224, 3) * 2 - 1
        ti, hi, wi = torch.meshgrid(torch.arange(8), torch.arange(14), torch.arange(14), indexing="ij")

        def forward():
            with torch.inference_mode():
                v = video.reshape(1, 8, 4, 14, 16, 14, 16, 3).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(1, tokens, voxel)
                p = pos_ln(pos[0][ti.flatten()] + pos[1][hi.flatten()] + pos[2][wi.flatten()])
                x = torch.cat([agg.expand(1, 1, d), patch(v) + p], 1)
                return final_ln(enc(x))[:, 0]

        print(json.dumps({**info, "ms": timed(forward, 1, rounds)}))
        return

    if case == "tiny":
        # The tiny preset's training step: B=8 clips of 8x64x64 video (32 voxels of 4x16x16x3), 8192 audio samples
        # (64 windows of 128), 2 captions of 16 words (vocabulary 65536, 64-d embeddings, T5 relative bias, RMS norm);
        # every Transformer 2 layers, D=64, MLP 256, 4 heads; dropout 0.1; heads to S_va (64) and S_vt (32); NCE +
        # MIL-NCE at temperature 0.07; Adam over every weight, the word table included.
        B, K, W, D, MLP, H = 8, 2, 16, 64, 256, 4

        class Tokenizer(nn.Module):
            def __init__(self, patch, tables):
                super().__init__()
                self.proj = nn.Linear(patch, D)
                self.tables = nn.ParameterList([nn.Parameter(torch.randn(n, D) * D**-0.5) for n in tables])
                self.ln = nn.LayerNorm(D, eps=1e-6)
                self.agg = nn.Parameter(torch.randn(1, 1, D) * 0.1)
                grids = torch.meshgrid(*[torch.arange(n) for n in tables], indexing="ij")
                self.idx = [g.flatten() for g in grids]

            def forward(self, x):
                p = self.ln(sum(t[i] for t, i in zip(self.tables, self.idx)))
                x = F.dropout(self.proj(x) + p, 0.1, self.training)
                return torch.cat([self.agg.expand(x.shape[0], 1, D), x], 1)

        def encoder():
            layer = nn.TransformerEncoderLayer(
                D, H, MLP, dropout=0.1, activation="gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-6
            )
            return nn.Sequential(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.LayerNorm(D, eps=1e-6))

        class RMSNorm(nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = nn.Parameter(torch.ones(D))

            def forward(self, x):
                return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6) * self.scale

        class TextLayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm1 = RMSNorm()
                self.qkv = nn.Linear(D, 3 * D, bias=False)
                self.o = nn.Linear(D, D, bias=False)
                self.ln2 = nn.LayerNorm(D, eps=1e-6)
                self.wi = nn.Linear(D, MLP, bias=False)
                self.wo = nn.Linear(MLP, D, bias=False)

            def forward(self, x, bias):
                n = x.shape[1]
                q, k, v = self.qkv(self.norm1(x)).reshape(x.shape[0], n, 3, H, D // H).permute(2, 0, 3, 1, 4)
                a = F.dropout(torch.softmax(q @ k.transpose(-1, -2) + bias, -1), 0.1, self.training) @ v
                x = x + F.dropout(self.o(a.transpose(1, 2).reshape(x.shape)), 0.1, self.training)
                h = F.dropout(F.gelu(self.wi(self.ln2(x))), 0.1, self.training)
                return x + F.dropout(self.wo(h), 0.1, self.training)

        class Text(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(65536, 64)
                self.agg = nn.Parameter(torch.randn(1, 1, 64) * 0.1)
                self.pre = nn.Linear(64, D, bias=False)
                self.rel = nn.Parameter(torch.rand(32, H) * 0.1 - 0.05)
                self.layers = nn.ModuleList([TextLayer() for _ in range(2)])
                self.final = RMSNorm()
                pos = torch.arange(W + 1)
                self.buckets = (pos[None, :] - pos[:, None]).abs().clamp(max=31)

            def forward(self, ids):
                x = torch.cat([self.agg.expand(ids.shape[0], 1, 64), self.emb(ids)], 1)
                x = F.dropout(F.gelu(self.pre(x)), 0.1, self.training)
                pad = torch.cat([torch.zeros(ids.shape[0], 1), (ids == 0).float() * -1e9], 1)
                bias = self.rel[self.buckets].permute(2, 0, 1)[None] + pad[:, None, None, :]
                for layer in self.layers:
                    x = layer(x, bias)
                return F.dropout(self.final(x), 0.1, self.training)[:, 0]

        class Vatt(nn.Module):
            def __init__(self):
                super().__init__()
                self.vtok = Tokenizer(3072, (2, 4, 4))
                self.venc = encoder()
                self.atok = Tokenizer(128, (64,))
                self.aenc = encoder()
                self.text = Text()
                self.va = nn.Sequential(
                    nn.Linear(D, 64, bias=False),
                    nn.BatchNorm1d(64),
                    nn.ReLU(),
                    nn.Linear(64, 64, bias=False),
                    nn.BatchNorm1d(64),
                )
                self.vt = nn.Sequential(nn.ReLU(), nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32))
                self.ahead = nn.Linear(D, 64)
                self.thead = nn.Linear(D, 32)

            def forward(self, video, audio, ids):
                v = self.venc(self.vtok(video))[:, 0]
                va = self.va(v)
                vt = self.vt(va)
                a = self.ahead(self.aenc(self.atok(audio))[:, 0])
                t = self.thead(self.text(ids))
                return va, vt, a, t

        def mil_nce(v, t, k):
            v = F.normalize(v, dim=-1)
            t = F.normalize(t, dim=-1)
            b = v.shape[0]
            sim = (v @ t.t() / 0.07).reshape(b, b, k)
            denom = torch.logsumexp(torch.cat([sim, sim.transpose(0, 1)], 1).reshape(b, -1), 1)
            num = torch.logsumexp(sim[torch.arange(b), torch.arange(b)], 1)
            return (denom - num).mean()

        model = Vatt()
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(0)
        video = torch.rand(B, 8, 64, 64, 3, generator=g) * 2 - 1
        audio = torch.rand(B, 8192, generator=g) * 2 - 1
        ids = torch.randint(1, 65536, (B * K, W), generator=g)
        ids[:, 10:] = 0

        def step():
            opt.zero_grad(set_to_none=True)
            vp = video.reshape(B, 2, 4, 4, 16, 4, 16, 3).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(B, 32, 3072)
            ap = audio.reshape(B, 64, 128)
            va, vt, a, t = model(vp, ap, ids)
            loss = mil_nce(va, a, 1) + mil_nce(vt, t, K)
            loss.backward()
            opt.step()
            return loss

        print(json.dumps({**info, "ms": timed(step, 5, rounds)}))
        return

    raise SystemExit(f"unknown case {case!r}: probe, gemm, tiny, block or bbs")


if __name__ == "__main__":
    main()
