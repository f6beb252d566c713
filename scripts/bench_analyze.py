"""Speed of the ``rrx analyze`` runners: images/s of each analysis (and its own unit), on synthetic images with masks.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_analyze.py --threads 1                     # CPU, small_cnn, 64 px
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_analyze.py --threads 1 --model resnet18
    python scripts/bench_analyze.py --device cuda --model resnet18 --image-size 224 --images 360 --batch 64 \\
        --ipha-iterations 100 --ipha-neighbours 16 --focus-per-class 10  # the configs' own settings

Each runner of ``rrx.analyses`` (its typed config, shrunk by the options below so a CPU run stays short)
runs once untimed on ``--warmup`` images (Focus: 18 images, one mosaic per class) for cudnn autotuning, the allocator
and lazy init, then is timed on ``--images`` images in one call of ``run``, as ``rrx analyze`` calls it. Random weights
(speed does not depend on them; the results do, so they are not printed). Data: ``--images`` synthetic images over 9
classes, evenly spread (a class-coloured square, its object mask, on a noise background), in memory; float32 (the
analyses compute attributions without autocast). The PNG examples go to a temporary folder, deleted at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from timing import timed
from torch.utils.data import Subset, TensorDataset

from rrx.analyses import create_analysis
from rrx.config import component
from rrx.models import create_model
from rrx.runtime import Runtime, resolve_device, seed_everything

CLASSES = 9
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)  # conf/dataset/synthetic.yaml
ANALYSES = ("localisation", "obey", "focus", "u_analysis", "ipha")


def synthetic(n: int, size: int, seed: int = 0) -> TensorDataset:
    """(x (n, 3, size, size) in [0, 1], y (n,), mask (n, 1, size, size)): labels 0, 1, ..., 8, 0, 1, ...; a square of
    the class colour, half the image side, at a random position (the mask) on uniform noise in [0, 0.5]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    colours = torch.rand(CLASSES, 3, generator=g)
    side = size // 2
    corners = torch.randint(0, size - side + 1, (n, 2), generator=g)
    mask = torch.zeros(n, 1, size, size)
    for i, (r, c) in enumerate(corners.tolist()):
        mask[i, :, r : r + side, c : c + side] = 1
    x = torch.where(
        mask.bool(),
        colours[y][:, :, None, None].expand(n, 3, size, size),
        torch.rand(n, 3, size, size, generator=g) * 0.5,
    )
    return TensorDataset(x, y, mask)


def settings(args) -> dict[str, dict]:
    """The values this run gives each analysis's typed config (``rrx.config.component``)."""
    ig = {"ig_steps": args.ig_steps}
    return {
        "localisation": ig,
        "obey": ig,
        "focus": {**ig, "per_class": args.focus_per_class},
        "u_analysis": {**ig, "examples": 2},
        "ipha": {**ig, "iterations": args.ipha_iterations, "neighbours": args.ipha_neighbours, "examples": 2},
    }


def own_unit(name: str, cfg, result: dict, images: int, seconds: float) -> str:
    """The analysis's own work per second: mosaic explanations (Focus), model inputs (U Analysis), candidate masks
    scored (IPHA); empty where images/s says it all."""
    if name == "focus":
        setting = next(iter(result.values()))
        # the model, then its full random copy or each step of the cascade (whose last step is the full copy)
        copies = 1 + (len(setting["cascading"]) if "cascading" in setting else int("randomised" in setting))
        maps = setting["mosaics"] * len(cfg.attribution) * copies
        return f"{maps / seconds:.1f} mosaic maps/s"
    if name == "u_analysis":
        (setting,) = result.values()
        return (
            f"{images * (setting['patches'] + 1) / seconds:.0f} inputs/s ({setting['patches']} patches + 1 per image)"
        )
    if name == "ipha":
        fills = [cfg.fill] if isinstance(cfg.fill, str) else list(cfg.fill)
        return f"{images * len(fills) * cfg.iterations * cfg.neighbours / seconds:.0f} candidates/s"
    return ""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--model", default="small_cnn", help="an rrx model option (rrx train --help lists them)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=36, help="images timed (9 classes, evenly spread)")
    parser.add_argument(
        "--warmup", type=int, default=9, help="images of the untimed first run (Focus: 18, 1 mosaic per class)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--analyses", default=",".join(ANALYSES))
    parser.add_argument("--ig-steps", type=int, default=50, help="Integrated Gradients steps, every analysis")
    parser.add_argument("--focus-per-class", type=int, default=2, help="Focus mosaics per class (config: 10)")
    parser.add_argument("--ipha-iterations", type=int, default=10, help="IPHA hill-climbing steps (config: 100)")
    parser.add_argument("--ipha-neighbours", type=int, default=8, help="IPHA candidates per step (config: 16)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser


def run(args, report=print) -> list[dict]:
    """One dict per analysis of ``--analyses``: images/s, seconds, its own unit (text), peak MiB on CUDA, the
    settings it ran with and the PNG examples it wrote. ``report`` gets the header and each analysis's settings line."""
    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")  # captum's, once per guided method
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    device = resolve_device(args.device)
    runtime = Runtime(device, amp=False, batch_size=args.batch, num_workers=0, progress=False)
    data = synthetic(args.images, args.image_size)
    dataset = SimpleNamespace(
        name="bench", mean=MEAN, std=STD, classes=[f"class_{k}" for k in range(CLASSES)], has_masks=True
    )
    model = create_model(component("model", args.model), CLASSES, MEAN, STD).to(device).eval()
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    report(
        f"device {device} ({where}), torch {torch.__version__}, model {args.model} (random weights), "
        f"{args.image_size} px, {args.images} images timed after a warm-up run on {args.warmup}, "
        f"batch {args.batch}, float32"
    )
    overrides = settings(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.analyses.split(","):
            cfg = component("analysis", name, **overrides[name])
            analysis = create_analysis(cfg)
            out_dir = Path(tmp) / name
            out_dir.mkdir()
            if name == "focus":  # a mosaic needs two images of its class and two of others
                warm, warm_images = (
                    create_analysis(OmegaConf.merge(cfg, {"per_class": 1})),
                    Subset(data, range(2 * CLASSES)),
                )
            else:
                warm, warm_images = analysis, Subset(data, range(min(args.warmup, args.images)))
            warm.run(model, warm_images, dataset, runtime, out_dir)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            result, seconds = timed(lambda: analysis.run(model, data, dataset, runtime, out_dir), device)
            shown = {
                k: v
                for k, v in OmegaConf.to_container(cfg).items()
                if k not in ("name", "variation", "max_images", "seed")
            }
            report(
                f"{name}: "
                + " ".join(
                    f"{k}={'[' + ','.join(map(str, v)) + ']' if isinstance(v, list) else v}" for k, v in shown.items()
                )
            )
            rows.append(
                {
                    "analysis": name,
                    "model": args.model,
                    "image_size": args.image_size,
                    "images": len(data),
                    "images_per_s": len(data) / seconds,
                    "seconds": seconds,
                    "own_unit": own_unit(name, cfg, result, len(data), seconds),
                    "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
                    "settings": shown,
                    "png_examples": len(list(out_dir.rglob("*.png"))),
                }
            )
    return rows


def main() -> None:
    args = parser().parse_args()
    rows = run(args)
    cuda = rows and rows[0]["peak_mib"] is not None
    print(f"\n{'analysis':13s} {'images/s':>9s} {'seconds':>8s}  {'own unit':45s} {'peak memory' if cuda else ''}")
    for r in rows:
        peak = f"{r['peak_mib']:.0f} MiB" if r["peak_mib"] is not None else ""
        print(f"{r['analysis']:13s} {r['images_per_s']:9.2f} {r['seconds']:8.1f}  {r['own_unit']:45s} {peak}")
    print(f"({sum(r['png_examples'] for r in rows)} PNG examples written to a temporary folder, now deleted)")


if __name__ == "__main__":
    main()
