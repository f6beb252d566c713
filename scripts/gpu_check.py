"""Every GPU measurement rrx needs, in one command on one CUDA device, written as JSON and Markdown rows.

    python scripts/gpu_check.py --out gpu_check --wheels gpu_wheels        # one CUDA device: about 8 min on an H100
    python scripts/gpu_check.py --device cpu --quick --out /tmp/gpu_check   # the same code paths on a CPU, under 2 min

It runs the benchmark scripts' own measuring functions, one part after another:

- ``train``: ``bench_train.py``, ResNet-18 at 224 px bf16 batch 256 and ViT-B/16 batch 32 (random weights), every
  method of the thesis grid, the files read every epoch, eager; with the projected GPU-hours of the grid;
- ``evaluate``: ``bench_evaluate.py``, background variations and adversarial backgrounds (composites/s) of ResNet-50
  and CLIP ViT-B/32, and the projected hours of the full IN-9 adversarial-backgrounds challenge;
- ``decode``: ``bench_decode.py`` with its batched CUDA (nvJPEG) row; ``guard``: ``bench_guard.py``;
- ``ddp``: a 2-rank ``rrx train trainer.devices=2`` smoke run when more than one GPU is visible (else skipped);
- ``analyze``: ``bench_analyze.py``, ResNet-18 at 224 px with the configs' own settings (IPHA: 100 x 16 steps);
- ``train_preloaded`` and ``train_compile``: Standard and one more method of both models, preloaded
  (``dataset.preload_gb``) and through ``trainer.compile`` (CUDA only: inductor's CPU compile alone exceeds the
  quick budget).

``--quick`` shrinks every part (32 px, a few steps, stand-in models for training and the analyses, the real
evaluation models) so a CPU runs the same code in under two minutes. Each part's time is printed;
a part that fails is recorded with its one-line error and the next one runs;
at ``--deadline-s`` (seconds from the start) the running part is stopped and the rest recorded as skipped
("deadline"). ``<out>/gpu_check.json`` (a ``machine`` block and one entry per part) is rewritten after every part
and every training case; ``<out>/gpu_check.md`` holds the rows for docs/performance.md.

Before it imports rrx it installs what the machine lacks of hydra-core, omegaconf, antlr4-python3-runtime, captum and
PyYAML from ``--wheels`` (made by ``scripts/gpu_wheels.sh``) into ``--target`` with ``pip --no-index``, and puts the
target and the checkout on the path (also for its subprocesses): a plain copy of the checkout runs it.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.util
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

START = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]
# module -> distribution, in install order; installed with --no-deps (everything else rrx needs is on the GPU machine)
NEEDED = {
    "antlr4": "antlr4-python3-runtime",
    "yaml": "PyYAML",
    "omegaconf": "omegaconf",
    "hydra": "hydra-core",
    "captum": "captum",
}
PARTS = ("train", "evaluate", "decode", "guard", "ddp", "analyze", "train_preloaded", "train_compile")


def missing_packages() -> list[str]:
    """The distributions of ``NEEDED`` whose module cannot be imported here."""
    missing = []
    for module, dist in NEEDED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    return missing


def install_wheels(wheels: Path, target: Path, packages: list[str]) -> None:
    """``pip install --no-index --no-deps`` of ``packages`` from the wheel folder ``wheels`` into ``target``; a
    Python without pip unpacks the wheels there instead."""
    if not wheels.is_dir():
        raise SystemExit(
            f"gpu_check: {', '.join(packages)} missing and no wheel folder {wheels} "
            "(make it with scripts/gpu_wheels.sh)"
        )
    # asked of a child Python: importlib.util.find_spec("pip") here would trigger setuptools' distutils hook
    # (_distutils_hack's spec_for_pip), which leaves this process unable to import setuptools, and so torch.compile's
    # C++ builder (torch.utils.cpp_extension), for the rest of its life
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if not has_pip:
        unpack_wheels(wheels, target, packages)
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--upgrade",
            "--find-links",
            str(wheels),
            "--target",
            str(target),
            *packages,
        ],
        check=True,
    )


def unpack_wheels(wheels: Path, target: Path, packages: list[str]) -> None:
    """The wheels of ``packages`` in ``wheels`` unpacked into ``target`` (a wheel is a zip of its site-packages
    files; these need no install-time step)."""
    wanted = {name.lower().replace("-", "_") for name in packages}
    found = [w for w in sorted(wheels.glob("*.whl")) if w.name.split("-")[0].lower() in wanted]
    if len(found) != len(wanted):
        raise SystemExit(
            f"gpu_check: {wheels} "
            f"lacks wheels of {', '.join(sorted(wanted - {w.name.split('-')[0].lower() for w in found}))}"
        )
    for wheel in found:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)


def put_on_path(*folders: Path) -> None:
    """``folders`` first on this process's path and on ``PYTHONPATH`` (the subprocesses' path)."""
    for folder in reversed(folders):
        sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, folders), *filter(None, [os.environ.get("PYTHONPATH")])])


def bootstrap(wheels: Path, target: Path) -> list[str]:
    """Install the missing ``NEEDED`` packages, put them, the checkout and ``scripts/`` on the path; returns what
    was installed."""
    missing = missing_packages()
    if missing:
        install_wheels(wheels, target, missing)
        put_on_path(target)
        importlib.invalidate_caches()
        still = missing_packages()
        if still:
            raise SystemExit(f"gpu_check: {', '.join(still)} still not importable after installing into {target}")
    put_on_path(ROOT, ROOT / "scripts")
    return missing


class DeadlineReached(Exception):
    pass


def _alarm(signum, frame):
    raise DeadlineReached()


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}".rstrip(": ")


def commit(given: str | None, wheels: Path) -> str | None:
    """``--commit``, else git's in a checkout with .git, else the COMMIT file gpu_wheels.sh writes beside the wheels
    (a plain copy of the checkout)."""
    if given:
        return given
    if (ROOT / ".git").exists():
        try:
            return (
                subprocess.run(
                    ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                or None
            )
        except (OSError, subprocess.CalledProcessError):
            pass
    stamp = wheels / "COMMIT"
    return stamp.read_text().strip() if stamp.is_file() else None


def machine(device, args, installed: list[str]) -> dict:
    import torch

    cuda = device.type == "cuda"
    return {
        "hostname": socket.gethostname(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "gpus_visible": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(args.commit, args.wheels),
        "quick": args.quick,
        "deadline_s": args.deadline_s,
        "installed_from_wheels": installed,
    }


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


# ---- the parts: each takes the check's settings and returns a JSON-ready dict ----


def settings(args, device) -> dict:
    """Arguments of each bench script per part, full (one GPU, about 8 min) or ``--quick`` (a CPU, under 2 min)."""
    cache = str(args.cache_dir)
    workers = str(min(8, os.cpu_count() or 1)) if device.type == "cuda" else "0"
    if args.quick:
        train = [
            "--models",
            "small_cnn,vit_test",
            "--image-size",
            "32",
            "--batch",
            "8",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--workers",
            "0",
            "--train-per-class",
            "2",
            "--cache-dir",
            cache,
        ]
        return {
            "train": train,
            "train_preloaded": [*train, "--models", "small_cnn", "--methods", "standard,rrr", "--preload-gb", "4"],
            "train_compile": [*train, "--methods", "standard", "--compile", "--warmup", "2"],
            "evaluate": [
                "--image-size",
                "32",
                "--val-per-class",
                "2",
                "--batch",
                "32",
                "--stats-per-class",
                "1",
                "--no-challenge-all",
                "--models",
                "resnet50,clip_b32",
                "--workers",
                "0",
            ],
            "analyze": [
                "--model",
                "small_cnn",
                "--image-size",
                "32",
                "--images",
                "18",
                "--warmup",
                "9",
                "--batch",
                "32",
                "--ig-steps",
                "2",
                "--focus-per-class",
                "1",
                "--ipha-iterations",
                "2",
                "--ipha-neighbours",
                "2",
            ],
            "decode": ["--image-size", "32", "--files", "18", "--batch", "9", "--cache-dir", cache],
            "guard": ["--model", "small_cnn", "--image-size", "32", "--batch", "8", "--steps", "2"],
            "ddp": {"model": "small_cnn", "image_size": 32, "train_per_class": 4, "batch": 8},
        }
    train = [
        "--models",
        "resnet18,vit_b16",
        "--image-size",
        "224",
        "--batch",
        "256,32",
        "--steps",
        "15",
        "--warmup",
        "3",
        "--workers",
        workers,
        "--cache-dir",
        cache,
    ]
    return {
        "train": train,
        "train_preloaded": [*train, "--methods", "standard,rrr", "--preload-gb", "4"],
        "train_compile": [*train, "--methods", "standard,actdiff", "--compile", "--warmup", "5"],
        "evaluate": [
            "--image-size",
            "224",
            "--val-per-class",
            "50",
            "--batch",
            "256",
            "--stats-per-class",
            "2",
            "--no-challenge-all",
            "--models",
            "resnet50,clip_b32",
        ],
        "analyze": [
            "--model",
            "resnet18",
            "--image-size",
            "224",
            "--images",
            "36",
            "--warmup",
            "9",
            "--batch",
            "64",
            "--ig-steps",
            "50",
            "--focus-per-class",
            "10",
            "--ipha-iterations",
            "100",
            "--ipha-neighbours",
            "16",
        ],
        "decode": ["--image-size", "224", "--files", "2700", "--batch", "256", "--cache-dir", cache],
        "guard": ["--model", "resnet18", "--image-size", "224", "--batch", "64", "--steps", "20"],
        "ddp": {"model": "resnet18", "image_size": 64, "train_per_class": 20, "batch": 64},
    }


def train_part(argv: list[str], device, save) -> dict:
    """bench_train's cases one by one (``save`` after each, so a deadline keeps the measured ones), its table and
    the grid projection."""
    import bench_train

    args = bench_train.parser().parse_args([*argv, "--device", device.type])
    _, line = bench_train.setting(args)
    print(f"  {line}", flush=True)
    planned = bench_train.cases(args)
    rows, loader_cache = [], {}
    result = {"argv": argv, "setting": line, "cases": len(planned), "rows": [], "projection": None}
    for model_name, batch, case in planned:
        rows.append(bench_train.measure(model_name, case, batch, args, loader_cache))
        print(f"  {model_name} {rows[-1]['method']}: {rows[-1]['end_to_end']:.1f} images/s end to end", flush=True)
        result.update(rows=bench_train.table(rows), projection=bench_train.projection(rows, args, device))
        save(result)
    return result


def evaluate_part(argv, device, save) -> dict:
    import bench_evaluate

    args = bench_evaluate.parser().parse_args([*argv, "--device", device.type])
    return {"argv": argv, "rows": bench_evaluate.run(args, report=lambda line: print(f"  {line}", flush=True))}


def analyze_part(argv, device, save) -> dict:
    import bench_analyze

    args = bench_analyze.parser().parse_args([*argv, "--device", device.type])
    return {"argv": argv, "rows": bench_analyze.run(args, report=lambda line: print(f"  {line}", flush=True))}


def decode_part(argv, device, save) -> dict:
    import bench_decode

    rows = bench_decode.run(bench_decode.parser().parse_args(argv))
    nvjpeg = next((r for r in rows if "CUDA" in r["decoder"]), None)
    return {
        "argv": argv,
        "rows": rows,
        "nvjpeg": nvjpeg if nvjpeg else {"status": "skipped", "reason": "no CUDA device: the nvJPEG row needs one"},
    }


def guard_part(argv, device, save) -> dict:
    import bench_guard

    return {"argv": argv, **bench_guard.run(bench_guard.parser().parse_args([*argv, "--device", device.type]))}


def ddp_part(spec: dict, device, save) -> dict:
    """``rrx train trainer.devices=2`` on two GPUs, one epoch; checks both ranks trained (metrics.json)."""
    import torch

    if device.type != "cuda" or torch.cuda.device_count() < 2:
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return {"status": "skipped", "reason": f"2-rank DDP smoke run needs 2 GPUs; {visible} visible"}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [
            sys.executable,
            "-m",
            "rrx",
            "train",
            f"model={spec['model']}",
            *(["model.pretrained=false"] if spec["model"] != "small_cnn" else []),  # small_cnn has no weights
            "trainer.device=cuda",
            "trainer.devices=2",
            "trainer.epochs=1",
            f"trainer.batch_size={spec['batch']}",
            "trainer.progress=false",
            f"dataset.image_size={spec['image_size']}",
            f"dataset.train_per_class={spec['train_per_class']}",
            "dataset.val_per_class=4",
            f"hydra.run.dir={run}",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(
                f"rrx train trainer.devices=2 exited {done.returncode}: "
                f"{(done.stderr.strip().splitlines() or [''])[-1]}"
            )
        metrics = json.loads((run / "metrics.json").read_text())
    devices = metrics["train"]["devices"]
    if devices != 2:
        raise RuntimeError(f"metrics.json says {devices} device(s), not 2")
    return {
        "command": " ".join(command[1:]),
        "seconds": seconds,
        "devices": devices,
        "final_loss": metrics["train"]["epochs"][-1]["loss"],
    }


RUNNERS = {
    "train": train_part,
    "train_preloaded": train_part,
    "train_compile": train_part,
    "evaluate": evaluate_part,
    "analyze": analyze_part,
    "decode": decode_part,
    "guard": guard_part,
    "ddp": ddp_part,
}


# ---- the report ----


def markdown(report: dict) -> str:
    m = report["machine"]
    where = m["gpu"] or m["cpu"]
    label = f"{where} ({m['hostname']}, {m['date'][:10]})"
    lines = [
        f"# gpu_check: {where}",
        "",
        f"{m['hostname']}, {m['gpus_visible']} GPU(s) visible, {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"torch {m['torch']}, CUDA {m['cuda']}, cuDNN {m['cudnn']}, {m['date']}, commit {m['commit']}"
        + (", --quick" if m["quick"] else ""),
        "",
        "| part | status | seconds | note |",
        "|---|---|---:|---|",
    ]
    for name, part in report["parts"].items():
        note = part.get("error") or part.get("reason") or ""
        lines.append(f"| {name} | {part['status']} | {part.get('seconds', 0):.1f} | {note} |")
    for name in ("train", "train_preloaded", "train_compile"):
        result = report["parts"].get(name, {}).get("result")
        if not result or not result["rows"]:
            continue
        lines += [
            "",
            f"## {name}: {result['setting']}",
            "",
            "| machine | model | method | loader images/s | model only images/s | end to end images/s | "
            "end to end / model only | ms/step | x Standard | peak MiB | RRDA op share |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
            share = f"{100 * r['rrda_share']:.1f} %" if r["rrda_share"] is not None else ""
            lines.append(
                f"| {label} | {r['architecture']} | {r['method']} | {r['loader_images_per_s']:.0f} | "
                f"{r['model_only_images_per_s']:.1f} | {r['end_to_end_images_per_s']:.1f} | "
                f"{r['end_to_end_over_model_only']:.2f} | {r['ms_per_step']:.1f} | {r['x_standard']:.2f} | "
                f"{peak} | {share} |"
            )
        p = result["projection"]
        if name == "train" and p:
            lines += [
                "",
                f"{p['title']} ({p['epochs']} epochs, evaluation not included):",
                "",
                "| machine | model | method | runs | epochs | "
                + " | ".join(f"{d} h" for d in p["training_images"])
                + " | total h |",
                "|---|---|---|---:|---:|" + "---:|" * (len(p["training_images"]) + 1),
            ]
            for r in p["rows"]:
                lines.append(
                    f"| {label} | {r['architecture']} | {r['method']} | {r['runs']} | {r['epochs']} | "
                    + " | ".join(f"{h:.1f}" for h in r["hours"].values())
                    + f" | {r['total_h']:.1f} |"
                )
            lines.append(
                f"| {label} | all | grid total | | | "
                + " | ".join("" for _ in p["training_images"])
                + f" | {p['total_h']:.1f} |"
                + (f" (not measured: {', '.join(p['missing'])})" if p["missing"] else "")
            )
    result = report["parts"].get("evaluate", {}).get("result")
    if result:
        lines += [
            "",
            "## evaluate",
            "",
            "| machine | model | size | background variations | adversarial_backgrounds | "
            "full IN-9 adversarial backgrounds (projected) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            lines.append(
                f"| {label} | {r['model']} | {r['image_size']} px | {r['background_images_per_s']:.0f} images/s | "
                f"{r['composites_per_s']:.0f} composites/s | {r['full_in9_h']:.2f} h |"
            )
    result = report["parts"].get("analyze", {}).get("result")
    if result:
        lines += [
            "",
            "## analyze",
            "",
            "| machine | analysis | model | size | images/s | seconds | own unit | peak MiB |",
            "|---|---|---|---:|---:|---:|---|---:|",
        ]
        for r in result["rows"]:
            peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
            lines.append(
                f"| {label} | `{r['analysis']}` | {r['model']} | {r['image_size']} px | {r['images_per_s']:.2f} | "
                f"{r['seconds']:.1f} | {r['own_unit']} | {peak} |"
            )
    result = report["parts"].get("decode", {}).get("result")
    if result:
        lines += [
            "",
            "## decode",
            "",
            "| machine | decoder | size | images/s | vs PIL | max. pixel difference |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            lines.append(
                f"| {label} | {r['decoder']} | {r['image_size']} px ({r['files']} files) | {r['images_per_s']:.0f} | "
                f"{r['vs_pil']:.2f}x | {r['max_difference']} |"
            )
    result = report["parts"].get("guard", {}).get("result")
    if result:
        lines += [
            "",
            "## guard",
            "",
            "| machine | model | size, batch | parameter tensors | training step | guard | guard / step |",
            "|---|---|---|---:|---:|---:|---:|",
            f"| {label} | {result['model']} | {result['image_size']} px, {result['batch']} | "
            f"{result['parameter_tensors']} | "
            f"{result['step_ms']:.2f} ms | {result['guard_ms']:.2f} ms | {100 * result['guard_share']:.2f} % |",
        ]
    result = report["parts"].get("ddp", {}).get("result")
    if result:
        lines += [
            "",
            f"## ddp: {result['devices']} ranks, one epoch in {result['seconds']:.1f} s (`{result['command']}`)",
        ]
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path) -> None:
    """The JSON and the Markdown, each replaced whole (a temporary file renamed over it)."""
    for name, text in (
        ("gpu_check.json", json.dumps(report, indent=1, default=str)),
        ("gpu_check.md", markdown(report)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--device", default="cuda", help="cuda (one device) | cpu")
    parser.add_argument("--quick", action="store_true", help="every part shrunk to run on a CPU in under 2 minutes")
    parser.add_argument(
        "--deadline-s", type=float, default=480.0, help="stop and write what exists this many seconds after the start"
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts, in this order: {','.join(PARTS)}"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="synthetic benchmark cache (default: $RRX_CACHE or ~/.cache/rrx)"
    )
    parser.add_argument("--commit", default=None, help="the checkout's commit (default: the COMMIT file, else git)")
    parser.add_argument(
        "--wheels", type=Path, default=ROOT / "gpu_wheels", help="wheels of the packages the machine may lack"
    )
    parser.add_argument(
        "--target",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rrx-gpu-site",
        help="where those wheels are installed when needed",
    )
    return parser


def main() -> int:
    cli = parser()
    args = cli.parse_args()
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        cli.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    installed = bootstrap(args.wheels, args.target)
    if installed:
        print(f"installed from {args.wheels} into {args.target}: {', '.join(installed)}", flush=True)

    import torch

    from rrx.runtime import resolve_device

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        cli.error("--device cuda but no CUDA device is visible (use --device cpu --quick)")
    device = resolve_device(args.device)
    args.cache_dir = (args.cache_dir or Path(os.environ.get("RRX_CACHE", "~/.cache/rrx"))).expanduser()
    os.environ["RRX_CACHE"] = str(args.cache_dir)  # the parts that compose configs generate there too
    args.out.mkdir(parents=True, exist_ok=True)
    plan = settings(args, device)
    report = {"machine": machine(device, args, installed), "parts": {name: {"status": "pending"} for name in parts}}
    write(report, args.out)
    signal.signal(signal.SIGALRM, _alarm)
    for name in parts:
        entry = report["parts"][name]
        left = args.deadline_s - (time.monotonic() - START)
        if left <= 0:
            entry.update(status="skipped", reason="deadline", seconds=0.0)
            print(f"{name}: skipped (deadline)", flush=True)
            continue
        if name == "train_compile" and device.type != "cuda":
            entry.update(
                status="skipped",
                seconds=0.0,
                reason="trainer.compile is measured on CUDA only (inductor's CPU compile exceeds the quick budget)",
            )
            print(f"{name}: skipped ({entry['reason']})", flush=True)
            continue
        print(f"{name}: {left:.0f} s to the deadline", flush=True)
        start = time.perf_counter()

        def save(partial, entry=entry):
            entry.update(status="running", result=partial, seconds=time.perf_counter() - start)
            write(report, args.out)

        signal.setitimer(signal.ITIMER_REAL, left)
        try:
            result = RUNNERS[name](plan[name], device, save)
            signal.setitimer(signal.ITIMER_REAL, 0)  # measured in time: no alarm while the result is recorded
            if result.get("status") == "skipped":
                entry.update(status="skipped", reason=result["reason"])
            else:
                entry.update(status="ok", result=result)
        except DeadlineReached:
            entry.update(status="deadline", reason="stopped at the deadline; result holds what it had measured")
        except (
            Exception,
            SystemExit,
        ) as error:  # a failing part (an argparse error too) is recorded; the next one runs
            entry.update(status="failed", error=one_line(error), traceback=traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            gc.collect()  # the part's models, loaders and their workers, before the next part measures memory
            if device.type == "cuda":
                torch.cuda.empty_cache()
        entry["seconds"] = time.perf_counter() - start
        print(
            f"{name}: {entry['status']} in {entry['seconds']:.1f} s"
            + (f" ({entry.get('error') or entry.get('reason')})" if entry["status"] != "ok" else ""),
            flush=True,
        )
        write(report, args.out)
    report["machine"]["wall_s"] = time.monotonic() - START
    write(report, args.out)
    print(
        f"wall {report['machine']['wall_s']:.1f} s; wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
