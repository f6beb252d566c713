"""Images for the Model Inspector: an uploaded file -> the model's (3, S, S) input in [0, 1], and back to pixels.

Any size or mode Pillow reads is accepted and converted, each conversion named in a note the page shows:
grayscale and 16-bit images are repeated over three channels, CMYK converted to RGB, transparency composited on
white, the shorter side resized to S and the centre cropped (as ImageNet evaluation does). A file that is not an
image, or one of more than ``MAX_PIXELS`` pixels (a decompression bomb), is an RRXError naming the fix.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from rrx.data.base import labels_of
from rrx.errors import RRXError

if TYPE_CHECKING:
    from rrx.data.base import Benchmark

MAX_PIXELS = 120_000_000  # a 10,000 x 10,000 photo (100 MP) is read; larger ones are refused before decoding


def load_image(data: bytes, size: int, name: str = "the upload") -> tuple[torch.Tensor, list[str]]:
    """(3, size, size) float32 image in [0, 1] from the bytes of an image file, and notes on what was converted."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            pixels = image.width * image.height
            if pixels > MAX_PIXELS:
                raise RRXError(
                    f"{name} is {image.width} x {image.height} px ({pixels / 1e6:.0f} MP); images up to "
                    f"{MAX_PIXELS / 1e6:.0f} MP are read: scale it down first"
                )
            original = image.size
            if image.format == "JPEG":
                image.draft(None, (size, size))  # decode a large JPEG at a reduced scale, no smaller than size
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:
        raise RRXError(f"{name} is not an image Pillow can read (PNG or JPEG): {str(err).splitlines()[0]}") from None
    image = ImageOps.exif_transpose(image)
    rgb = to_rgb(image, notes)
    if rgb.size != (size, size):
        notes.append(f"resized from {original[0]} x {original[1]} to {size} x {size} px (shorter side, centre crop)")
        rgb = ImageOps.fit(rgb, (size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous(), notes


def to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """An 8-bit RGB copy of ``image``, noting any conversion."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = 65535.0 if mode.startswith("I") else max(float(values.max()), 1.0)
        gray = np.clip(values / high * 255.0, 0, 255).astype(np.uint8)
        notes.append(f"{mode} (high bit depth grayscale) scaled to 8 bits and repeated over three channels")
        return Image.fromarray(gray, "L").convert("RGB")
    if mode in ("1", "L"):
        notes.append(f"grayscale ({mode}) repeated over three channels")
        return image.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "P") and (mode != "P" or "transparency" in image.info):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        notes.append(f"transparency ({mode}) composited on white")
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    notes.append(f"{mode} converted to RGB")
    return image.convert("RGB")


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 pixels of an image (3, H, W) in [0, 1]."""
    return (x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def png_bytes(x: torch.Tensor) -> bytes:
    """PNG file of an image (3, H, W) in [0, 1]."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(x)).save(buffer, format="PNG")
    return buffer.getvalue()


def dataset_variations(dataset: Benchmark) -> list[str]:
    """The test variations of ``dataset`` the page offers (``Benchmark.variations``: the IN-9 variations a
    ``bg_challenge`` root holds, RIVAL10's generated ones, ``original`` for a dataset without variations)."""
    return dataset.variations()


def dataset_classes(dataset: Benchmark, variation: str) -> list[str]:
    """The class names of ``dataset`` (a background dataset learns them from the first folder it lists, unless a
    checkpoint gave them)."""
    if not dataset.classes:
        dataset.variation_set(variation, masks=dataset.has_masks)
    classes = dataset.classes
    assert classes is not None, "variation_set learns the class names"
    return list(classes)


def dataset_image(
    dataset: Benchmark, variation: str, label: int, index: int
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """Test image number ``index`` of class ``label`` in ``variation``: (x (3, S, S), its object mask (S, S) or None
    when the dataset has none, a description). RRXError for a class or index out of range."""
    data = dataset.variation_set(variation, masks=dataset.has_masks)
    classes = dataset_classes(dataset, variation)
    if not 0 <= label < len(classes):
        raise RRXError(f"class index {label} is out of range: dataset {dataset.name} has {len(classes)} classes")
    members = [i for i, y in enumerate(labels_of(data)) if y == label]
    if not 0 <= index < len(members):
        raise RRXError(
            f"image index {index} is out of range: class {classes[label]} has {len(members)} images in "
            f"{variation}, 0 .. {len(members) - 1}"
        )
    item = data[members[index]]
    mask = item[2][0] if len(item) > 2 else None
    return item[0], mask, f"{dataset.name} / {variation} / {classes[label]} #{index}"
