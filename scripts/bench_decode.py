"""JPEG decoding for the loader: PIL (what ``rrx.data.image_io.load_rgb`` uses) against ``torchvision.io.decode_jpeg``.

    .venv/bin/python scripts/bench_decode.py --image-size 224 --files 2000  # CPU; adds batched GPU decoding on CUDA

Decodes the first ``--files`` training JPEGs of the synthetic benchmark (generated once into the rrx cache at
``--image-size``; an IN-9-layout tree) into uint8 (3, H, W) tensors, in one process, after one untimed pass that
warms the file cache, so only decoding is timed:

- PIL: ``Image.open(path).convert("RGB")`` to a tensor;
- torchvision, CPU: ``decode_jpeg(read_file(path))`` one file at a time;
- torchvision, CUDA (when a GPU is present): the files' bytes (read beforehand) decoded in batches of ``--batch``
  with ``decode_jpeg(list, device="cuda")``.

Every decoder's pixels are compared with PIL's (the maximum absolute difference is printed: decoders may round
the IDCT differently). A loader worker decodes one file at a time, so the CPU rows give a worker's rate.
torchvision deprecated its image decoders in 0.29 (for TorchCodec), so rrx's loaders keep PIL; this script keeps
the comparison for the record (docs/performance.md).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from PIL import Image
from timing import timed
from torchvision.io import decode_jpeg, read_file

from rrx.data.synthetic import SyntheticSpec, materialise


def pil(path) -> torch.Tensor:
    with Image.open(path) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB"))).permute(2, 0, 1)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256, help="files per batched GPU decode")
    parser.add_argument("--cache-dir", default="~/.cache/rrx")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser


def run(args) -> list[dict]:
    """One dict per decoder: images/s, the ratio to PIL's rate and the largest pixel difference from PIL's; the
    batched CUDA (nvJPEG) row only where a GPU is present."""
    warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision are deprecated")
    torch.set_num_threads(args.threads)
    per_class = -(-args.files // 9)
    root = materialise(SyntheticSpec(image_size=args.image_size, train_per_class=per_class), args.cache_dir)
    files = sorted((root / "original" / "train").rglob("*.JPEG"))[: args.files]
    data = [read_file(str(f)) for f in files]  # also warms the file cache
    cpu = torch.device("cpu")
    reference, seconds = timed(lambda: [pil(f) for f in files], cpu)
    rows = [("PIL", len(files) / seconds, 0)]
    decoded, seconds = timed(lambda: [decode_jpeg(read_file(str(f))) for f in files], cpu)
    rows.append(("torchvision decode_jpeg, CPU", len(files) / seconds, max_difference(decoded, reference)))
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        decode_jpeg(data[: args.batch], device="cuda")  # warm-up: CUDA context and nvJPEG handles

        def batched():
            return [
                img
                for i in range(0, len(data), args.batch)
                for img in decode_jpeg(data[i : i + args.batch], device="cuda")
            ]

        decoded, seconds = timed(batched, gpu)
        rows.append(
            (
                f"torchvision decode_jpeg, CUDA, batches of {args.batch} ({torch.cuda.get_device_name()})",
                len(files) / seconds,
                max_difference([d.cpu() for d in decoded], reference),
            )
        )
    return [
        {
            "decoder": name,
            "files": len(files),
            "image_size": args.image_size,
            "threads": torch.get_num_threads(),
            "images_per_s": rate,
            "vs_pil": rate / rows[0][1],
            "max_difference": diff,
        }
        for name, rate, diff in rows
    ]


def main() -> None:
    rows = run(parser().parse_args())
    print(
        f"{rows[0]['files']} JPEGs of {rows[0]['image_size']} px, {rows[0]['threads']} CPU thread(s), "
        f"torch {torch.__version__}"
    )
    print("| Decoder | images/s | vs PIL | max abs. difference from PIL (grey levels) |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['decoder']} | {r['images_per_s']:.0f} | {r['vs_pil']:.2f}x | {r['max_difference']} |")


def max_difference(decoded: list[torch.Tensor], reference: list[torch.Tensor]) -> int:
    return max(int((a.int() - b.int()).abs().max()) for a, b in zip(decoded, reference))


if __name__ == "__main__":
    main()
