"""Training-step time of every method relative to Standard, on the same batch, in one run.

    .venv/bin/python scripts/bench_methods.py --model resnet18 --image-size 64 --batch 64 --steps 5

Prints ms per step and the ratio to Standard for each method (and for ARRR with FGSM/PGD).
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_module

from rrx.attacks import create_attack
from rrx.methods import create_method
from rrx.models import create_model
from rrx.runtime import Runtime, resolve_device, seed_everything
from rrx.tasks.classification import training_step

CASES = [  # (label, method config, attack config)
    ("Standard", "standard", "none"),
    ("Standard + RRDA", "rrda", "none"),
    ("RRR", "rrr", "none"),
    ("GradMask", "gradmask", "none"),
    ("ActDiff", "actdiff", "none"),
    ("ActDiff + RRDA", "actdiff_rrda", "none"),
    ("Standard + FGSM", "standard", "fgsm"),
    ("Standard + PGD-10", "standard", "pgd"),
    ("RRR + FGSM", "rrr", "fgsm"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per method (after 2 warm-up steps)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    seed_everything(0)
    device = resolve_device(args.device)
    runtime = Runtime(device, amp=device.type == "cuda", batch_size=args.batch, num_workers=0, progress=False)
    x = torch.rand(args.batch, 3, args.image_size, args.image_size)
    y = torch.randint(0, 9, (args.batch,))
    mask = torch.zeros(args.batch, 1, args.image_size, args.image_size)
    quarter = args.image_size // 4
    mask[:, :, quarter : 3 * quarter, quarter : 3 * quarter] = 1
    batch = (x, y, mask)

    print(f"model={args.model} image={args.image_size} batch={args.batch} device={device} steps={args.steps}")
    print(f"{'method':<20} {'ms/step':>10} {'x Standard':>11}")
    baseline = None
    for label, method_name, attack_name in CASES:
        with initialize_config_module("rrx.conf", version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"model={args.model}",
                    f"method={method_name}",
                    f"attack={attack_name}",
                    f"dataset.image_size={args.image_size}",
                ],
            )
        model = create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std).to(device).train()
        method, attack = create_method(cfg.method), create_attack(cfg.attack)
        if method.double_backprop:
            model.use_plain_attention()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        for step in range(2 + args.steps):
            if step == 2:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            loss, _, _ = training_step(model, method, attack, cfg.attack.mix, batch, runtime, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        ms = 1000 * (time.perf_counter() - start) / args.steps
        baseline = baseline or ms
        print(f"{label:<20} {ms:>10.1f} {ms / baseline:>11.2f}")


if __name__ == "__main__":
    main()
