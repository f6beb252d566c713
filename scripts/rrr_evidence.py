"""Why RRR does not lower the BG-Gap on the embedded benchmark: for trained runs, how much of each input
gradient lies on the context, and how often predictions flip when the context is swapped (mixed_rand).

RRR (thesis Eq. 2.7) penalises the context part of g_sum = d/dx sum_k log p_k = sum_k (1 - K p_k) d z_k/dx.
The script prints, per run, on the test images of mixed_same (object and context of the same class) with
their mixed_rand counterparts:
  - ctx energy of g_sum:  sum over context pixels of g_sum^2, mean over images      (what RRR penalises)
  - ctx share of g_sum:   that energy / the energy over all pixels
  - ctx share of g_y:     the same for g_y = d log p_y / dx of the true class         (what decides)
  - cos(g_sum, g_y):      their cosine similarity on the context pixels
  - flips:                share of images whose prediction changes from mixed_same to mixed_rand
    python scripts/rrr_evidence.py <run folder> [<run folder> ...]
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from rrx.data import create_dataset
from rrx.models import create_model
from rrx.subject import load_checkpoint


def gradients(model, x, y):
    x = x.clone().requires_grad_(True)
    logp = F.log_softmax(model(x), dim=1)
    (g_sum,) = torch.autograd.grad(logp.sum(), x, retain_graph=True)
    (g_y,) = torch.autograd.grad(logp.gather(1, y[:, None]).sum(), x)
    return g_sum, g_y


def main(folders: list[str]) -> None:
    print(
        "| run | method | lambda | seed | ctx energy of g_sum | ctx share of g_sum | ctx share of g_y | "
        "cos(g_sum, g_y) on ctx | flips same->rand |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder in folders:
        ckpt, _ = load_checkpoint(folder)
        cfg = OmegaConf.create(ckpt["config"])
        data = create_dataset(cfg.dataset)
        model = create_model(OmegaConf.merge(cfg.model, {"pretrained": False}), data.num_classes, data.mean, data.std)
        model.load_state_dict(ckpt["state_dict"])
        model.eval()
        same = torch.utils.data.DataLoader(data.variation_set("mixed_same", masks=True), batch_size=150)
        rand = torch.utils.data.DataLoader(data.variation_set("mixed_rand"), batch_size=150)
        totals = torch.zeros(6)
        for (x, y, mask), (x_rand, _) in zip(same, rand):
            g_sum, g_y = gradients(model, x, y)
            ctx = 1 - mask
            e_sum, e_y = g_sum.pow(2).sum((1, 2, 3)), g_y.pow(2).sum((1, 2, 3))
            c_sum, c_y = (ctx * g_sum).pow(2).sum((1, 2, 3)), (ctx * g_y).pow(2).sum((1, 2, 3))
            cos = F.cosine_similarity((ctx * g_sum).flatten(1), (ctx * g_y).flatten(1), dim=1)
            with torch.no_grad():
                flips = (model(x).argmax(1) != model(x_rand).argmax(1)).float()
            totals += torch.stack(
                [(c_sum / e_sum).sum(), (c_y / e_y).sum(), cos.sum(), flips.sum(), torch.tensor(len(y)), c_sum.sum()]
            )
        n = totals[4]
        run = ckpt["run"]
        print(
            f"| {folder.rstrip('/').split('/')[-1][:40]} | {run['method']} | {run['lam']:g} | {run['seed']} | "
            f"{totals[5] / n:.3g} | {totals[0] / n:.3f} | {totals[1] / n:.3f} | {totals[2] / n:.3f} | "
            f"{100 * totals[3] / n:.1f} % |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
