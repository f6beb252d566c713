"""Evaluation speed of off-the-shelf models: images/s of the background variations, the wall time of
``challenge=all``, and composites/s of ``adversarial_backgrounds``, for ResNet-50 and CLIP ViT-B/32.

    .venv/bin/python scripts/bench_evaluate.py --image-size 64 --val-per-class 20          # CPU
    .venv/bin/python scripts/bench_evaluate.py --device cuda --image-size 224 --val-per-class 50 --batch 256

Random weights (speed does not depend on them): ResNet-50 is timm's architecture with a 9-class head (the
ImageNet-1k mapping costs one scatter per batch); CLIP ViT-B/32 is transformers' default CLIPConfig with a
character tokenizer from tests/fixtures/vlm.py. Data: the synthetic benchmark at --image-size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from timing import timed

from rrx.challenges import check_variations, create_challenge
from rrx.data import create_dataset
from rrx.models import create_model, model_config
from rrx.runtime import Runtime, resolve_device, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def clip_b32(folder: Path) -> Path:
    """transformers' default CLIPConfig (ViT-B/32 vision tower, 224 px) with random weights, saved to ``folder``."""
    from fixtures.vlm import _tokenizer
    from transformers import CLIPConfig, CLIPModel

    tokenizer, vocab = _tokenizer()
    config = CLIPConfig(text_config={"vocab_size": vocab, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3})
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


FULL_IN9 = 4050 * 4050  # IN-9's adversarial-backgrounds challenge: every foreground against every background


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--stats-per-class", type=int, default=2, help="adversarial_backgrounds.stats_per_class")
    parser.add_argument("--snr-max-images", type=int, default=18, help="challenge.snr_max_images of challenge=all")
    parser.add_argument(
        "--challenge-all",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time challenge=all (variations, edge grid, SNR)",
    )
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: 4 on CUDA, 0 on a CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default="resnet50,clip_b32")
    return parser


def run(args, report=print) -> list[dict]:
    """One dict per model of ``--models``: background variations' images/s, challenge=all's seconds (None unless
    ``--challenge-all``), adversarial backgrounds' composites/s and the projected hours of the full IN-9 challenge.
    ``report`` gets each line as it is measured."""
    seed_everything(0)
    device = resolve_device(args.device)
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"dataset.image_size={args.image_size}",
                f"dataset.val_per_class={args.val_per_class}",
                "dataset.train_per_class=2",
                "challenge=all",
                "trainer.progress=false",
                f"challenge.snr_max_images={args.snr_max_images}",
            ],
        )
        all_cfg = cfg.challenge
        adv_cfg = compose("evaluate", overrides=["challenge=adversarial_backgrounds"]).challenge
    adv_cfg.stats_per_class = args.stats_per_class
    workers = args.workers if args.workers is not None else 4 if device.type == "cuda" else 0
    runtime = Runtime(device, amp=device.type == "cuda", batch_size=args.batch, num_workers=workers, progress=False)
    dataset = create_dataset(cfg.dataset)
    challenges = {
        "background": create_challenge({"name": "background", "variations": list(all_cfg.variations)}),
        "all": create_challenge(all_cfg),
        "adversarial_backgrounds": create_challenge(adv_cfg),
    }
    for challenge in challenges.values():
        check_variations(challenge, dataset)
    n = len(dataset.variation_set("original"))
    report(
        f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), {args.image_size} px, "
        f"{n} images per variation, batch {args.batch}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        builders = {
            "resnet50": lambda: create_model(model_config("timm", arch="resnet50", pretrained=False), 9),
            "clip_b32": lambda: create_model(
                model_config("clip", weights_path=str(clip_b32(Path(tmp) / "clip"))), None, classes=dataset.classes
            ),
        }
        for name in args.models.split(","):
            model = builders[name]().to(device).eval()
            challenges["background"].evaluate(model, dataset, runtime)  # warm-up: decoding caches, cudnn autotune
            _, seconds = timed(lambda: challenges["background"].evaluate(model, dataset, runtime), device)
            row = {
                "model": name,
                "image_size": args.image_size,
                "images_per_variation": n,
                "variations": len(all_cfg.variations),
                "background_images_per_s": len(all_cfg.variations) * n / seconds,
                "background_seconds": seconds,
                "challenge_all_seconds": None,
            }
            report(
                f"{name:9s} background variations: {row['background_images_per_s']:8.0f} images/s "
                f"({len(all_cfg.variations)} x {n} images in {seconds:.1f} s)"
            )
            if args.challenge_all:
                _, row["challenge_all_seconds"] = timed(
                    lambda: challenges["all"].evaluate(model, dataset, runtime), device
                )
                report(
                    f"{name:9s} challenge=all (variations, edge grid, SNR on {args.snr_max_images} images): "
                    f"{row['challenge_all_seconds']:.1f} s"
                )
            found = challenges["adversarial_backgrounds"].evaluate(model, dataset, runtime)["adversarial_backgrounds"]
            row.update(
                composites_per_s=found["images_per_second"],
                composites=found["composites"],
                stats_foregrounds=found["stats_foregrounds"],
                backgrounds=found["backgrounds"],
                adversarial_seconds=found["seconds"],
                full_in9_composites=FULL_IN9,
                full_in9_h=FULL_IN9 / found["images_per_second"] / 3600,
            )
            report(
                f"{name:9s} adversarial_backgrounds: {found['images_per_second']:8.0f} composites/s "
                f"({found['composites']} composites, {found['stats_foregrounds']} foregrounds against all "
                f"{found['backgrounds']} backgrounds, {found['seconds']:.1f} s)"
            )
            report(
                f"{name:9s} projected full IN-9 (4,050 x 4,050 = {FULL_IN9:,} composites, none stopping early): "
                f"{row['full_in9_h']:.2f} h"
            )
            rows.append(row)
    return rows


def main() -> None:
    run(parser().parse_args())


if __name__ == "__main__":
    main()
