"""Cost of the non-finite guard (gradients before the optimizer step, parameters after it) relative to a training step.

    .venv/bin/python scripts/bench_guard.py --model resnet18 --image-size 64 --batch 64 --steps 10

Times, in one run on the same batch, a Standard training step (forward, backward, SGD step) and the two checks
``train_epoch`` adds to every step, and prints both in ms and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_module

from rrx.guard import all_finite
from rrx.methods import create_method
from rrx.models import create_model
from rrx.runtime import resolve_device, seed_everything


def timed(fn, steps: int, device: torch.device) -> float:
    """Milliseconds per call of ``fn`` over ``steps`` calls, after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / steps


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="auto")
    return parser


def run(args) -> dict:
    """The training step's and the guard's milliseconds, their ratio and the parameter tensors checked."""
    seed_everything(0)
    device = resolve_device(args.device)
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"model={args.model}", f"dataset.image_size={args.image_size}"])
    model = create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std).to(device).train()
    method = create_method(cfg.method)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 3, args.image_size, args.image_size, device=device)
    y = torch.randint(0, 9, (args.batch,), device=device)
    params = list(model.parameters())

    def step():
        loss, _ = method.loss(model, x, y, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def guard():
        all_finite(p.grad for p in params)
        all_finite(params)

    step_ms, guard_ms = timed(step, args.steps, device), timed(guard, args.steps, device)
    return {
        "model": args.model,
        "image_size": args.image_size,
        "batch": args.batch,
        "device": str(device),
        "parameter_tensors": len(params),
        "step_ms": step_ms,
        "guard_ms": guard_ms,
        "guard_share": guard_ms / step_ms,
    }


def main() -> None:
    r = run(parser().parse_args())
    print(
        f"model={r['model']} image={r['image_size']} batch={r['batch']} device={r['device']} "
        f"parameters={r['parameter_tensors']} tensors"
    )
    print(f"training step {r['step_ms']:8.2f} ms")
    print(f"guard         {r['guard_ms']:8.2f} ms  ({100 * r['guard_share']:.2f} % of a step)")


if __name__ == "__main__":
    main()
