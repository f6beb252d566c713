"""Response time of the Model Inspector (``rrx inspect``): a transform + prediction on one image, per transform.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_inspect.py --threads 1          # ResNet-18, CPU, 224 px

ResNet-18 with random weights (torchvision's architecture, 1000 classes; speed does not depend on the weights), one
224 px image. For each transform of ``rrx.inspector.transforms`` it times, as the median of ``--repeats`` calls after
one untimed call: the transform alone; the transform and the prediction of the original and the transformed image
in one batch of 2 (what a slider move asks of the model); and the whole view, ``transform_view`` with its figure
rendered to PNG as the page shows it. The CPU time of transform + prediction is printed too: on a shared machine
it is the steadier figure. The other views are timed once each (after one untimed call) for the record.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import torch
from omegaconf import OmegaConf
from timing import timed

from rrx.data.label_maps import imagenet_class_names
from rrx.inspector.model import Inspected
from rrx.inspector.transforms import TRANSFORMS, apply_transform, default_value
from rrx.inspector.views import (
    attribution_view,
    background_view,
    probabilities,
    signal_view,
    snr_view,
    transform_view,
    u_view,
)
from rrx.models import create_model
from rrx.runtime import resolve_device


def median_ms(fn, device, repeats: int) -> float:
    fn()
    return 1000 * statistics.median(timed(fn, device)[1] for _ in range(repeats))


def median_cpu_ms(fn, repeats: int) -> float:
    """Median CPU time of this process per call: on a loaded machine it stays near what an idle one takes
    (with one thread, near the wall-clock time there)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def rendered(view) -> int:
    """The figure drawn as the page draws it (a PNG)."""
    buffer = io.BytesIO()
    view.figure.savefig(buffer, format="png")
    return buffer.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = create_model(OmegaConf.create({"name": "resnet18", "pretrained": False, "weights_path": None}), None)
    inspected = Inspected(model.to(device).eval(), imagenet_class_names(), args.image_size, None, "ResNet-18")
    x = torch.rand(3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
    print(
        f"ResNet-18 (random weights), {args.image_size} px, {device}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}"
    )
    print(f"{'transform':<20} {'transform':>10} {'+ prediction':>13} {'(CPU time)':>11} {'whole view':>11}   (ms)")
    for name in TRANSFORMS:
        value = default_value(name, args.image_size)
        alone = median_ms(lambda: apply_transform(name, x, value, 0), device, args.repeats)
        predict = lambda: probabilities(inspected, torch.stack([x, apply_transform(name, x, value, 0)]))  # noqa: E731
        both, cpu = median_ms(predict, device, args.repeats), median_cpu_ms(predict, args.repeats)
        view = median_ms(lambda: rendered(transform_view(inspected, x, name, value, 0)[0]), device, args.repeats)
        print(f"{name:<20} {alone:>10.1f} {both:>13.1f} {cpu:>11.1f} {view:>11.1f}")

    mask = torch.zeros(args.image_size, args.image_size)
    quarter = args.image_size // 4
    mask[quarter:-quarter, quarter:-quarter] = 1
    heat = attribution_view(inspected, x, "saliency")[1]
    target = int(probabilities(inspected, x[None]).argmax())
    values = {name: default_value(name, args.image_size) for name in TRANSFORMS if TRANSFORMS[name].kind == "texture"}
    others = {
        "attribution saliency": lambda: attribution_view(inspected, x, "saliency")[0],
        "attribution gradcam": lambda: attribution_view(inspected, x, "gradcam")[0],
        "attribution integrated_gradients": lambda: attribution_view(inspected, x, "integrated_gradients")[0],
        "U Analysis (window 0.1)": lambda: u_view(inspected, x, heat, target, 0.1, "increasing", "zeros", 0),
        "signal / context": lambda: signal_view(inspected, x, mask),
        "SNR (saliency, integrated_gradients)": lambda: snr_view(
            inspected, x, mask, ["saliency", "integrated_gradients"]
        ),
        "background textures": lambda: background_view(inspected, x, mask, values, 0),
    }
    print(f"\n{'view (figure rendered)':<38} {'ms':>8}")
    for label, make in others.items():
        print(f"{label:<38} {median_ms(lambda: rendered(make()), device, 1):>8.0f}")


if __name__ == "__main__":
    main()
