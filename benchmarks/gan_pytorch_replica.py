"""Benchmark: which DCGAN changes lift notebook 06's classifier score, at equal steps.

A PyTorch replica of notebook 06's GAN (same layers, Keras's initialisers, batch-norm
momentum and epsilon, Adam with beta_1 = 0.5 and eps 1e-7, warm-up and cosine decay, an
EMA generator), with switches for the discriminator, the loss and an R1 penalty, for
comparing variants at equal steps on an accelerator; samples are saved, then scored with
the project's classifier like the notebook scores them. What it found is recorded in
``docs/gan-design.md``.

PyTorch is **not** a project dependency: this script needs ``pip install torch`` (and
is meant for a GPU). Not collected by pytest. Two steps::

    python benchmarks/gan_pytorch_replica.py train --out runs/gan_variants --name lazy_r1 \\
        --discriminator hidden --r1 2 --r1-every 4 --seed 0
    python benchmarks/gan_pytorch_replica.py score runs/gan_variants    # TensorFlow side, no torch

``train`` writes ``NAME.npz`` with 2,000 samples of the EMA generator at 25/50/75/100 %
of the steps (uint8, the fixed noise of seed 1) and, at the end, five more sets of 5,000;
``score`` prints the notebook's measures for each 2,000, and the mean ± sd over the five
sets of 5,000 -- the notebook's final figure, against the notebook's reference digits.

Discriminators: ``base`` (the textbook DCGAN: conv, conv, dense), ``conv3`` (a third
strided convolution), ``hidden`` (notebook 06: a hidden dense layer of ``--width``
units with batch norm), ``hidden-dropout`` (the same with dropout 0.3). R1 is either
added to every ``--r1-every``-th discriminator loss (``--r1-mode joint``) or applied as
a separate discriminator step on the penalty alone, weighted by ``--r1-every``
(``--r1-mode separate``, the lazy regularisation of StyleGAN2, as in the notebook).
``--order`` updates the generator through the discriminator just updated (``d-then-g``,
the default, as the PyTorch DCGAN tutorial does) or takes both gradients from one forward
pass (``together``, as notebook 06 does).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def train(args: argparse.Namespace) -> None:
    import torch
    from torch import nn
    from torch.nn import functional as F

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    x = np.load(ROOT / "data" / "mnist.npz")["x_train"].astype(np.float32) / 255.0
    X = torch.tensor(x[:, None] * 2 - 1, device=dev)

    def bn1(n: int) -> nn.Module:
        return nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)  # Keras: momentum 0.99, epsilon 1e-3

    def bn2(n: int) -> nn.Module:
        return nn.BatchNorm2d(n, eps=1e-3, momentum=0.01)

    class Reshape(nn.Module):
        def forward(self, h: "torch.Tensor") -> "torch.Tensor":
            return h.view(h.shape[0], 128, 7, 7)

    G = nn.Sequential(nn.Linear(args.latent_dim, 7 * 7 * 128, bias=False), bn1(7 * 7 * 128), nn.ReLU(), Reshape(),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), bn2(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), bn2(32), nn.ReLU(),
                      nn.Conv2d(32, 1, 5, 1, 2), nn.Tanh())
    layers = [nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
              nn.Conv2d(64, 128, 4, 2, 1, bias=False), bn2(128), nn.LeakyReLU(0.2)]
    w = args.width
    if args.discriminator == "base":
        layers += [nn.Flatten(), nn.Linear(6272, 1)]
    elif args.discriminator == "conv3":
        layers += [nn.Conv2d(128, 256, 3, 2, 1, bias=False), bn2(256), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4096, 1)]
    elif args.discriminator == "hidden":
        layers += [nn.Flatten(), nn.Linear(6272, w, bias=False), bn1(w), nn.LeakyReLU(0.2), nn.Linear(w, 1)]
    elif args.discriminator == "hidden-dropout":
        layers += [nn.Flatten(), nn.Linear(6272, w, bias=False), bn1(w), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(w, 1)]
    D = nn.Sequential(*layers)
    for m in list(G.modules()) + list(D.modules()):  # Keras's glorot_uniform, zero biases
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            field = m.weight[0, 0].numel() if m.weight.dim() > 2 else 1
            limit = math.sqrt(6 / ((m.weight.shape[0] + m.weight.shape[1]) * field))
            nn.init.uniform_(m.weight, -limit, limit)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    G, D = G.to(dev), D.to(dev)
    ema = copy.deepcopy(G).eval()
    g_opt = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999), eps=1e-7)
    d_opt = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999), eps=1e-7)
    warm = max(1, int(args.steps * 0.1))

    def rate(step: int) -> float:
        if step < warm:
            return args.lr * step / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (args.steps - warm)))

    def r1_penalty(real: "torch.Tensor") -> "torch.Tensor":
        real = real.detach().requires_grad_(True)
        (slopes,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
        return slopes.pow(2).flatten(1).sum(1).mean()

    fixed = torch.randn(2000, args.latent_dim, generator=torch.Generator().manual_seed(1)).to(dev)
    saves: dict[str, np.ndarray] = {}
    checkpoints = {int(args.steps * f) for f in (0.25, 0.5, 0.75, 1.0)}
    args.out.mkdir(parents=True, exist_ok=True)
    perm, pos, started = torch.randperm(60000, device=dev), 0, time.time()
    for step in range(1, args.steps + 1):
        for opt in (g_opt, d_opt):
            for group in opt.param_groups:
                group["lr"] = rate(step - 1)
        if pos + args.batch > 60000:
            perm, pos = torch.randperm(60000, device=dev), 0
        real, pos = X[perm[pos:pos + args.batch]], pos + args.batch
        fake = G(torch.randn(args.batch, args.latent_dim, device=dev))
        if args.order == "together":  # the generator's gradient through the discriminator before its update
            together_logits = D(fake)
            if args.loss == "hinge":
                g_loss = -together_logits.mean()
            else:
                g_loss = F.binary_cross_entropy_with_logits(together_logits, torch.ones_like(together_logits))
            g_grads = torch.autograd.grad(g_loss, list(G.parameters()))
        real_logits, fake_logits = D(real), D(fake.detach())
        if args.loss == "hinge":
            d_loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        else:
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        r1_now = args.r1 > 0 and step % args.r1_every == 0
        if r1_now and args.r1_mode == "joint":
            d_loss = d_loss + args.r1_every * args.r1 / 2 * r1_penalty(real)
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        if args.order == "together":
            for param, grad in zip(G.parameters(), g_grads):
                param.grad = grad
        else:  # the generator's gradient through the discriminator just updated
            fake_logits = D(fake)
            if args.loss == "hinge":
                g_loss = -fake_logits.mean()
            else:
                g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
        g_opt.step()
        if r1_now and args.r1_mode == "separate":
            penalty = args.r1_every * args.r1 / 2 * r1_penalty(real)
            d_opt.zero_grad(set_to_none=True)
            penalty.backward()
            d_opt.step()
        with torch.no_grad():
            for average, current in zip(ema.parameters(), G.parameters()):
                average.mul_(0.999).add_(current, alpha=0.001)
            for average, current in zip(ema.buffers(), G.buffers()):
                average.copy_(current)
        if step in checkpoints:
            with torch.no_grad():
                images = ema(fixed).cpu().numpy()[:, 0]
            saves[f"ema_{step}"] = ((images + 1) * 127.5).clip(0, 255).astype(np.uint8)
            if step == args.steps:  # the notebook's final measure: five fresh sets of 5,000
                with torch.no_grad():
                    for k in range(5):
                        z = torch.randn(5000, args.latent_dim, generator=torch.Generator().manual_seed(100 + k))
                        images = ema(z.to(dev)).cpu().numpy()[:, 0]
                        saves[f"final_{k}"] = ((images + 1) * 127.5).clip(0, 255).astype(np.uint8)
            np.savez_compressed(args.out / f"{args.name}.npz", **saves)
            print(f"{args.name} step {step}: {time.time() - started:.0f} s, d_loss {d_loss.item():.3f}, "
                  f"g_loss {g_loss.item():.3f}", flush=True)


def score(folder: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from utils import data, scoring, seeding

    (_, _), (x_test, _) = data.load_mnist(normalize=True)
    # the notebook's reference: 5,000 test digits drawn with its seed
    reference = scoring.split_test_set(x_test[..., None], size=5_000, seed=seeding.DEFAULT_SEED)[0]
    scorer = scoring.Scorer(reference=reference)
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise SystemExit(f"no .npz samples in {folder}: run the train step first")
    for path in files:
        saved = np.load(path)
        finals = []
        for key in sorted(saved.files, key=lambda k: (k.startswith("final"), int(k.split("_")[1]))):
            result = scorer(saved[key][..., None].astype(np.float32) / 255.0)
            if key.startswith("final"):
                finals.append(result)
                continue
            print(f"{path.stem:16s} step {key.split('_')[1]:>6s}  {result.line()}", flush=True)
        if finals:
            scores, frechets = [r.score for r in finals], [r.frechet for r in finals]
            print(f"{path.stem:16s} final: score {np.mean(scores):.2f} ± {np.std(scores, ddof=1):.2f}, Fréchet "
                  f"{np.mean(frechets):.2f} ± {np.std(frechets, ddof=1):.2f} over {len(finals)} sets of 5,000 "
                  f"({', '.join(f'{x:.2f}' for x in scores)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one variant (needs PyTorch), save its samples")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--name", required=True)
    t.add_argument("--steps", type=int, default=7200)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--latent-dim", type=int, default=64)
    t.add_argument("--discriminator", choices=["base", "conv3", "hidden", "hidden-dropout"], default="hidden")
    t.add_argument("--width", type=int, default=256)
    t.add_argument("--loss", choices=["non-saturating", "hinge"], default="non-saturating")
    t.add_argument("--r1", type=float, default=0.0, help="R1 weight gamma (0: none)")
    t.add_argument("--r1-every", type=int, default=4)
    t.add_argument("--r1-mode", choices=["separate", "joint"], default="separate")
    t.add_argument("--order", choices=["d-then-g", "together"], default="d-then-g",
                   help="the generator's step after the discriminator's, or both from one forward pass")
    t.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="score every saved variant with the project's classifier")
    s.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.command == "train":
        train(args)
    else:
        score(args.folder)


if __name__ == "__main__":
    main()
