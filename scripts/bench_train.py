"""Training throughput: loader only, model only and end to end, per method, and the thesis grid's projected cost.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_train.py --device cpu --threads 1 --models small_cnn,vit_test \\
        --image-size 64 --batch 32 --steps 3 --workers 0                                              # CPU
    python scripts/bench_train.py --device cuda --models resnet18,vit_b16 --image-size 224 --batch 256,32 \\
        --steps 30 --workers 8 --train-per-class 1000                                                 # one GPU

Every case runs rrx's own training code on the synthetic benchmark (an IN-9-layout JPEG tree, generated once into the
rrx cache at ``--image-size``), with the thesis grid's settings (``experiment=thesis_grid``: RRDA as Alg. 3, RRR and
GradMask with ``reduction=sum`` on the normalised input, SGD), random weights (speed does not depend on them):

- loader only: images/s of ``runtime.train_loader(dataset.train_set(masks=...))``, the loader ``rrx train`` uses;
- model only: ``rrx.train.train_epoch`` over one batch preloaded on the device and reused;
- end to end: ``rrx.train.train_epoch`` over the real loader (decoding, masks, transfer and step).

The model is placed as ``rrx train`` places it (``--channels-last``: ``trainer.channels_last``); the loader reads the
files every epoch (``--preload-gb 0``) unless told to decode them once into memory, as a small set would be.

Images/s count the training images the loader delivers (B per step): RRDA's extra images (2B more per step with
Alg. 3) and an attack's extra passes show as a lower rate. The RRDA cases also print the RRDA op's own time (on the
device batch, timed alone) as a share of their step, which already trains on the RRDA images: images per step equal.
After ``--warmup`` untimed steps, ``--steps`` steps are timed. Step times are model-only and relative to Standard of
the same model. The projection: each grid method's runs (its lambda_grid entries) x 50 epochs (ADA: its own schedule,
in epochs of the training set) x the training images (IN-9 45,405 and RIVAL10 21,000, less the grid's 10 % validation
share), at the measured end-to-end images/s of that model and method; evaluation (``challenge=all``) and ADA's window
passes are not included. It means the thesis grid only for resnet18 and vit_b16 at 224 px on a GPU; anything else
prints it as a projection for what was measured.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from timing import synchronize

from rrx.distributed import create_fabric
from rrx.experiments import apply_experiment
from rrx.methods.rrda import rrda
from rrx.runtime import Runtime, seed_everything
from rrx.tasks import create_task
from rrx.tasks.base import LoopState
from rrx.train import train_epoch

METHODS = "standard,rrda,rrr,gradmask,actdiff,actdiff_rrda,ada,standard+fgsm,standard+pgd"
GRID_ARCHITECTURES = ("resnet18", "vit_b16")
TRAINING_IMAGES = {"IN-9": 45_405, "RIVAL10": 21_000}  # the thesis's training sets, before the validation share


def compose_case(model: str, method: str, attack: str, args, batch: int):
    overrides = [
        "experiment=thesis_grid",
        f"model={model}",
        f"method={method}",
        f"attack={attack}",
        "model_settings=null",  # random weights: the grid's pretrained ones are not what is timed
        f"dataset.image_size={args.image_size}",
        f"trainer.device={args.device}",
        f"trainer.amp={args.amp}",
        f"trainer.batch_size={batch}",
        "trainer.progress=false",
        f"dataset.num_workers={args.workers}",
        f"trainer.channels_last={args.channels_last}",
        f"dataset.preload_gb={args.preload_gb}",
        f"trainer.compile={args.compile}",
        "challenge=original",
    ]  # training is measured: no variations read
    if args.train_per_class is not None:
        overrides.append(f"dataset.train_per_class={args.train_per_class}")
    if args.cache_dir is not None:
        overrides.append(f"dataset.cache_dir={args.cache_dir}")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    return apply_experiment(cfg, overrides)  # the grid's lambda and per-method settings, as rrx train applies them


def endless(loader):
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def loader_rate(loader, runtime: Runtime, warmup: int, steps: int) -> float:
    """Images/s the loader delivers, after ``warmup`` batches."""
    stream = endless(loader)
    for _ in itertools.islice(stream, warmup):
        pass
    start, images = time.perf_counter(), 0
    for batch in itertools.islice(stream, steps):
        images += len(batch[1])
    return images / (time.perf_counter() - start)


def training_rate(batches, parts: dict, runtime: Runtime, warmup: int, steps: int, images_per_step: int) -> float:
    """Images/s of ``train_epoch`` over ``batches`` (an iterator): ``warmup`` steps, then ``steps`` timed ones."""
    if warmup:
        train_epoch(loader=itertools.islice(batches, warmup), where="warmup", loop=LoopState(), **parts)
    synchronize(runtime.device)
    start = time.perf_counter()
    train_epoch(loader=itertools.islice(batches, steps), where="epoch 1", loop=LoopState(), **parts)
    synchronize(runtime.device)
    return steps * images_per_step / (time.perf_counter() - start)


def measure(model_name: str, case: str, batch: int, args, loader_cache: dict) -> dict:
    """Loader-only, model-only and end-to-end images/s of one model and method (``method`` or ``method+attack``)."""
    method_name, _, attack_name = case.partition("+")
    cfg = compose_case(model_name, method_name, attack_name or "none", args, batch)
    seed_everything(0)
    fabric = create_fabric(cfg.trainer)  # one device: the single-device path of rrx train
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    task = create_task(cfg)  # the classification task as rrx train builds it: data, method, attack, model
    task.check()
    generator = torch.Generator().manual_seed(0)
    net = runtime.place(
        task.setup(runtime, generator), task.double_backprop
    )  # channels-last as trainer.channels_last says
    method = task.method
    if method.double_backprop:
        net.use_plain_attention()
    optimizer = task.optimizer(net.parameters())
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10 * (args.warmup + args.steps))
    model, optimizer = fabric.setup(runtime.compiled(net, method.double_backprop, method.label), optimizer)
    for name in task.forward_methods:
        model.mark_forward_method(name)
    params = [p for p in model.parameters() if p.requires_grad]
    parts = {
        "task": task,
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "params": params,
        "generator": generator,
        "fabric": fabric,
        "progress": False,
    }

    train_set = task.train_set
    key = (batch, method.needs_masks)
    if key not in loader_cache:
        loader_cache[key] = loader_rate(runtime.loader(train_set, shuffle=True), runtime, args.warmup, args.steps)
    loader = runtime.train_loader(train_set, generator)
    one = tuple(t.to(runtime.device) for t in next(iter(loader)))
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model_only = training_rate(itertools.repeat(one), parts, runtime, args.warmup, args.steps, batch)
    end_to_end = training_rate(endless(loader), parts, runtime, args.warmup, args.steps, batch)
    rrda_ms = rrda_time(one, method, args.warmup, args.steps) if method.rrda else None
    info = task.info
    return {
        "architecture": info["architecture"],
        "method": info["method"],
        "model": model_name,
        "grid_method": None if attack_name else method_name,
        "cfg": cfg,
        "method_obj": method,
        "loader": loader_cache[key],
        "model_only": model_only,
        "end_to_end": end_to_end,
        "ms_per_step": 1000 * batch / model_only,
        "rrda_ms": rrda_ms,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if runtime.device.type == "cuda" else None,
    }


def rrda_time(batch: tuple, method, warmup: int, steps: int) -> float:
    """Milliseconds of the RRDA op alone (``rrx.methods.rrda.rrda`` as ``training_step`` calls it) on a device batch."""
    x, y, mask = batch[:3]
    generator = torch.Generator().manual_seed(0)
    for _ in range(warmup):
        rrda(x, y, mask, generator, pairing=method.pairing, fill=method.fill)
    synchronize(x.device)
    start = time.perf_counter()
    for _ in range(steps):
        rrda(x, y, mask, generator, pairing=method.pairing, fill=method.fill)
    synchronize(x.device)
    return 1000 * (time.perf_counter() - start) / steps


def table(rows: list[dict]) -> list[dict]:
    """The JSON-ready throughput rows: images/s, end to end / model only, ms/step and its ratio to Standard of the
    same model, peak MiB, the RRDA op's ms and share of the step."""
    out = []
    for model_name, group in itertools.groupby(rows, key=lambda r: r["model"]):
        group = list(group)
        standard = next((r for r in group if r["method"] == "Standard"), group[0])
        for r in group:
            out.append(
                {
                    "model": r["model"],
                    "architecture": r["architecture"],
                    "method": r["method"],
                    "loader_images_per_s": r["loader"],
                    "model_only_images_per_s": r["model_only"],
                    "end_to_end_images_per_s": r["end_to_end"],
                    "end_to_end_over_model_only": r["end_to_end"] / r["model_only"],
                    "ms_per_step": r["ms_per_step"],
                    "x_standard": r["ms_per_step"] / standard["ms_per_step"],
                    "peak_mib": r["peak_mib"],
                    "rrda_ms": r["rrda_ms"],
                    "rrda_share": None if r["rrda_ms"] is None else r["rrda_ms"] / r["ms_per_step"],
                }
            )
    return out


def print_throughput(rows: list[dict]) -> None:
    print(
        f"\n{'model':<11} {'method':<18} {'loader':>8} {'model only':>11} {'end to end':>11} {'e2e/model':>10} "
        f"{'ms/step':>9} {'x Standard':>11} {'peak MiB':>9}"
    )
    print(f"{'':<11} {'':<18} {'img/s':>8} {'img/s':>11} {'img/s':>11}")
    for r in table(rows):
        peak = f"{r['peak_mib']:9.0f}" if r["peak_mib"] is not None else f"{'-':>9}"
        print(
            f"{r['architecture']:<11} {r['method']:<18} {r['loader_images_per_s']:>8.0f} "
            f"{r['model_only_images_per_s']:>11.1f} "
            f"{r['end_to_end_images_per_s']:>11.1f} {r['end_to_end_over_model_only']:>10.2f} {r['ms_per_step']:>9.1f} "
            f"{r['x_standard']:>11.2f} {peak}"
        )
    for r in table(rows):
        if r["rrda_ms"] is not None:  # the step already holds the RRDA images: its images per step are equal
            print(
                f"{r['architecture']} {r['method']}: the RRDA op takes {r['rrda_ms']:.2f} ms of the "
                f"{r['ms_per_step']:.1f} ms step ({100 * r['rrda_share']:.1f} %)"
            )


def projection(rows: list[dict], args, device: torch.device) -> dict:
    """Hours of the thesis grid's training runs (Tables 5, 6, 8) at the measured end-to-end rates: one row per model
    and grid method measured, each model's total, the grand total and the grid methods not measured."""
    grid = rows[0]["cfg"]
    grid_methods = str(grid.hydra.sweeper.params.method).split(",")
    val_fraction = float(grid.trainer.val_fraction)
    images = {name: n - max(1, round(val_fraction * n)) for name, n in TRAINING_IMAGES.items()}
    models = list(dict.fromkeys(r["model"] for r in rows))
    real = set(models) == set(GRID_ARCHITECTURES) and args.image_size == 224 and device.type == "cuda"
    where = f"{device.type}, {', '.join(models)} at {args.image_size} px"
    title = (
        "Projected GPU-hours of the thesis grid"
        if real
        else f"{device.type.upper()} projection ({where}; not the thesis grid's GPU cost)"
    )
    out = {
        "title": title,
        "thesis_grid": real,
        "epochs": int(grid.trainer.epochs),
        "training_images": images,
        "val_fraction": val_fraction,
        "rows": [],
        "model_total_h": {},
        "total_h": 0.0,
        "missing": [],
    }
    for model_name in models:
        measured = {r["grid_method"]: r for r in rows if r["model"] == model_name and r["grid_method"]}
        total = 0.0
        for name in grid_methods:
            if name not in measured:
                out["missing"].append(f"{model_name}/{name}")
                continue
            r = measured[name]
            method = r["method_obj"]
            runs = len(grid.lambda_grid[r["cfg"].method.name])
            epochs = sum(method.data_factor(e) for e in range(1, method.total_epochs(int(grid.trainer.epochs)) + 1))
            hours = {d: runs * epochs * n / r["end_to_end"] / 3600 for d, n in images.items()}
            total += sum(hours.values())
            out["rows"].append(
                {
                    "model": model_name,
                    "architecture": r["architecture"],
                    "method": r["method"],
                    "runs": runs,
                    "epochs": epochs,
                    "hours": hours,
                    "total_h": sum(hours.values()),
                }
            )
        out["model_total_h"][model_name] = total
        out["total_h"] += total
    return out


def print_projection(rows: list[dict], args, device: torch.device) -> None:
    p = projection(rows, args, device)
    images = p["training_images"]
    print(
        f"\n{p['title']}: training runs of Tables 5, 6, 8, {p['epochs']} epochs, "
        + ", ".join(f"{name} {n:,} training images" for name, n in images.items())
        + f" ({p['val_fraction']:.0%} held out); evaluation not included"
    )
    print(
        f"{'model':<11} {'method':<18} {'runs':>5} {'epochs':>7} "
        + " ".join(f"{name + ' h':>10}" for name in images)
        + f" {'total h':>9}"
    )
    for model_name, total in p["model_total_h"].items():
        for r in (r for r in p["rows"] if r["model"] == model_name):
            print(
                f"{r['architecture']:<11} {r['method']:<18} {r['runs']:>5} {r['epochs']:>7} "
                + " ".join(f"{h:>10.1f}" for h in r["hours"].values())
                + f" {r['total_h']:>9.1f}"
            )
        print(
            f"{'':<11} {'all methods':<18} {'':>5} {'':>7} " + " ".join(f"{'':>10}" for _ in images) + f" {total:>9.1f}"
        )
    missing = p["missing"]
    print(f"grid total: {p['total_h']:.1f} h" + (f" (not measured, left out: {', '.join(missing)})" if missing else ""))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,vit_b16", help="comma-separated model configs")
    parser.add_argument("--methods", default=METHODS, help="comma-separated method configs, method+attack for ARRR")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", default="32", help="batch size, or one per model (comma-separated)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (and loader batches) per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA (trainer.amp)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="loader workers (dataset.num_workers; IN-9 and RIVAL10 use 4)"
    )
    parser.add_argument(
        "--train-per-class", type=int, default=None, help="synthetic training images per class (config: 300)"
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where the synthetic benchmark is generated (config: $RRX_CACHE or ~/.cache/rrx)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--channels-last", default="auto", help="trainer.channels_last: auto (CUDA only) | true | false"
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="trainer.compile: torch.compile the training model (not double-backprop methods)",
    )
    parser.add_argument(
        "--preload-gb",
        type=float,
        default=0.0,
        help="dataset.preload_gb; 0 (default) reads the files every epoch, as IN-9's 9 GB training set is",
    )
    return parser


def cases(args) -> list[tuple[str, int, str]]:
    """(model, batch, method case) in the order they are measured; raises ValueError for a --batch list that does
    not fit --models."""
    models, methods = args.models.split(","), args.methods.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    if len(batches) not in (1, len(models)):
        raise ValueError(f"--batch takes one size or one per model ({len(models)})")
    batches = batches * len(models) if len(batches) == 1 else batches
    return [(model_name, batch, case) for model_name, batch in zip(models, batches) for case in methods]


def setting(args) -> tuple[torch.device, str]:
    """The device the cases run on and the one-line description of the run's settings."""
    model_name, batch, _ = cases(args)[0]
    probe = compose_case(model_name, "standard", "none", args, batch)
    runtime = Runtime.from_config(probe.trainer, probe.dataset)
    device = runtime.device
    return device, (
        f"device {device} ({device_name(device)}), {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; "
        f"{args.image_size} px, bf16 autocast {'on' if args.amp and device.type == 'cuda' else 'off'}, "
        f"{args.workers} loader worker(s), channels-last {'on' if runtime.channels_last else 'off'}, "
        f"dataset.preload_gb={args.preload_gb:g}, compile {'on' if args.compile else 'off'}, "
        f"warm-up {args.warmup} + {args.steps} timed steps"
    )


def main() -> None:
    cli = parser()
    args = cli.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        planned = cases(args)
    except ValueError as e:
        cli.error(str(e))
    device, line = setting(args)
    print(line)
    rows, loader_cache = [], {}
    for model_name, batch, case in planned:
        if not rows or rows[-1]["model"] != model_name:
            print(f"{model_name}: batch {batch}", flush=True)
        rows.append(measure(model_name, case, batch, args, loader_cache))
        print(f"  {rows[-1]['method']}: {rows[-1]['end_to_end']:.1f} images/s end to end", flush=True)
    print_throughput(rows)
    print_projection(rows, args, device)


if __name__ == "__main__":
    main()
