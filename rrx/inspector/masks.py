"""Signal selection of the Model Inspector (thesis 7.3.3): a rectangle, circle or polygon -> an object mask.

Shapes are in image pixel coordinates: x to the right, y down, the image's top-left corner at (0, 0), so pixel
(row i, column j) covers [j, j + 1) x [i, i + 1) and its centre is (j + 0.5, i + 0.5). A pixel belongs to the
signal when its centre lies inside the shape. Masks are (H, W) float tensors, 1 on the signal (rrx's convention).

Shapes come from typed coordinates (``parse_shape``: numbers only, nothing is evaluated) or from the drawing
canvas's Fabric.js JSON (``canvas_shapes``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

import torch
from matplotlib.path import Path as PolygonPath

from rrx.errors import RRXError

SHAPES = ("rectangle", "circle", "polygon")


@dataclass(frozen=True)
class Shape:
    """``kind`` one of ``SHAPES``; ``points``: rectangle (x0, y0), (x1, y1) corners; circle (cx, cy), (r, r);
    polygon its vertices in order."""

    kind: str
    points: tuple[tuple[float, float], ...]


def _centres(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) x and y of every pixel centre."""
    ys = torch.arange(h, dtype=torch.float64) + 0.5
    xs = torch.arange(w, dtype=torch.float64) + 0.5
    return xs[None, :].expand(h, w), ys[:, None].expand(h, w)


def rectangle_mask(h: int, w: int, x0: float, y0: float, x1: float, y1: float) -> torch.Tensor:
    """Pixels whose centre lies in [min(x0, x1), max(x0, x1)] x [min(y0, y1), max(y0, y1)]."""
    xs, ys = _centres(h, w)
    inside = (xs >= min(x0, x1)) & (xs <= max(x0, x1)) & (ys >= min(y0, y1)) & (ys <= max(y0, y1))
    return inside.float()


def circle_mask(h: int, w: int, cx: float, cy: float, r: float) -> torch.Tensor:
    """Pixels whose centre is at most ``r`` from (cx, cy)."""
    if r <= 0:
        raise RRXError(f"circle radius {r:g} must be positive")
    xs, ys = _centres(h, w)
    return ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).float()


def polygon_mask(h: int, w: int, points: Iterable[tuple[float, float]]) -> torch.Tensor:
    """Pixels whose centre lies inside the polygon with vertices ``points`` [(x, y), ...] (closed; even-odd rule,
    matplotlib's ``Path.contains_points``)."""
    vertices = [(float(x), float(y)) for x, y in points]
    if len(vertices) < 3:
        raise RRXError(f"a polygon needs at least 3 points, got {len(vertices)}; add points or choose a rectangle")
    xs, ys = _centres(h, w)
    centres = torch.stack([xs.flatten(), ys.flatten()], 1).numpy()
    inside = PolygonPath(vertices + [vertices[0]], closed=True).contains_points(centres)
    return torch.from_numpy(inside.reshape(h, w)).float()


def check_mask(mask: torch.Tensor) -> None:
    """RRXError unless the mask (H, W) has both signal and context pixels."""
    signal = int(mask.sum())
    if signal == 0:
        raise RRXError("the selection holds no pixel centre: draw a larger shape inside the image")
    if signal == mask.numel():
        raise RRXError("the selection covers the whole image: there is no context left; draw a smaller shape")


NUMBERS = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_shape(kind: str, text: str) -> Shape:
    """A shape from typed numbers (commas, spaces or semicolons between them): rectangle ``x0 y0 x1 y1``, circle
    ``cx cy r``, polygon ``x1 y1 x2 y2 x3 y3 ...``. Only numbers are read from the text; anything else is an error."""
    if kind not in SHAPES:
        raise RRXError(f"shape {kind!r}; known: {', '.join(SHAPES)}")
    leftover = NUMBERS.sub(" ", text).replace(",", " ").replace(";", " ").strip()
    if leftover:
        raise RRXError(f"{kind} coordinates {text!r}: {leftover.split()[0]!r} is not a number")
    values = [float(v) for v in NUMBERS.findall(text)]
    if not all(math.isfinite(v) for v in values):
        raise RRXError(f"{kind} coordinates {text!r} must be finite numbers")
    expected = {"rectangle": "4 numbers: x0 y0 x1 y1", "circle": "3 numbers: cx cy r"}
    if kind == "rectangle" and len(values) == 4:
        return Shape(kind, ((values[0], values[1]), (values[2], values[3])))
    if kind == "circle" and len(values) == 3:
        return Shape(kind, ((values[0], values[1]), (values[2], values[2])))
    if kind == "polygon":
        if len(values) % 2:
            raise RRXError(f"polygon coordinates {text!r}: {len(values)} numbers; give x y pairs")
        if len(values) < 6:
            raise RRXError(
                f"a polygon needs at least 3 points, got {len(values) // 2}; add points or choose a rectangle"
            )
        return Shape(kind, tuple(zip(values[::2], values[1::2])))
    raise RRXError(f"{kind} coordinates {text!r}: {len(values)} numbers; give {expected[kind]}")


ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def _placement(obj: dict, width: float, height: float) -> tuple[float, float, float, float, float]:
    """The centre (cx, cy) on the canvas, scales (sx, sy) and rotation (radians) of a Fabric.js object of size
    ``width`` x ``height`` (unscaled, without its stroke).

    Fabric places the ``originX``/``originY`` point of the object's box (its size including the stroke) at
    (``left``, ``top``) and rotates by ``angle`` degrees about that point.
    """
    sx, sy = float(obj.get("scaleX", 1)), float(obj.get("scaleY", 1))
    stroke = float(obj.get("strokeWidth", 0) or 0) if obj.get("stroke") else 0.0
    if obj.get("strokeUniform"):
        box_w, box_h = width * sx + stroke, height * sy + stroke
    else:
        box_w, box_h = (width + stroke) * sx, (height + stroke) * sy
    angle = math.radians(float(obj.get("angle", 0)))
    dx = (0.5 - ORIGIN[obj.get("originX", "left")]) * box_w
    dy = (0.5 - ORIGIN[obj.get("originY", "top")]) * box_h
    cx = float(obj["left"]) + dx * math.cos(angle) - dy * math.sin(angle)
    cy = float(obj["top"]) + dx * math.sin(angle) + dy * math.cos(angle)
    return cx, cy, sx, sy, angle


def _to_canvas(
    local: Iterable[tuple[float, float]], cx: float, cy: float, sx: float, sy: float, angle: float
) -> tuple[tuple[float, float], ...]:
    """Points in the object's own frame (centred) -> canvas points: scale, rotate, move to the centre."""
    cos, sin = math.cos(angle), math.sin(angle)
    return tuple((cx + x * sx * cos - y * sy * sin, cy + x * sx * sin + y * sy * cos) for x, y in local)


def fabric_shape(obj: dict, scale: float) -> Shape:
    """One Fabric.js object of the drawing canvas (``rect``, ``circle``, ``polygon``) as a Shape in image pixels;
    ``scale`` is canvas pixels per image pixel. A rotated rectangle becomes a polygon; a circle scaled unevenly,
    a 64-gon of its ellipse."""
    kind = str(obj.get("type", "")).lower()
    if kind == "circle":
        cx, cy, sx, sy, angle = _placement(obj, 2 * float(obj["radius"]), 2 * float(obj["radius"]))
    elif kind in ("rect", "polygon"):
        cx, cy, sx, sy, angle = _placement(obj, float(obj["width"]), float(obj["height"]))
    if kind == "rect":
        w, h = float(obj["width"]) / 2, float(obj["height"]) / 2
        corners = _to_canvas([(-w, -h), (w, -h), (w, h), (-w, h)], cx, cy, sx, sy, angle)
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        upright = float(obj.get("angle", 0)) % 90 == 0
        shape = Shape("rectangle", ((min(xs), min(ys)), (max(xs), max(ys)))) if upright else Shape("polygon", corners)
    elif kind == "circle":
        r = float(obj["radius"])
        if math.isclose(sx, sy):
            shape = Shape("circle", ((cx, cy), (r * sx, r * sx)))
        else:
            ring = [(r * math.cos(2 * math.pi * k / 64), r * math.sin(2 * math.pi * k / 64)) for k in range(64)]
            shape = Shape("polygon", _to_canvas(ring, cx, cy, sx, sy, angle))
    elif kind == "polygon":
        points = [(float(p["x"]), float(p["y"])) for p in obj.get("points", [])]
        if len(points) < 3:
            raise RRXError(f"a polygon needs at least 3 points, got {len(points)}; add points or choose a rectangle")
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        offset = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)  # Fabric's pathOffset: the points' box centre
        shape = Shape("polygon", _to_canvas([(x - offset[0], y - offset[1]) for x, y in points], cx, cy, sx, sy, angle))
    else:
        raise RRXError(f"canvas object {kind or '?'}: draw a rectangle, circle or polygon")
    return Shape(shape.kind, tuple((x / scale, y / scale) for x, y in shape.points))


def canvas_shapes(json_data: dict | None, scale: float) -> list[Shape]:
    """Every shape drawn on the canvas (its Fabric.js JSON), in image pixels."""
    objects = (json_data or {}).get("objects", [])
    return [fabric_shape(obj, scale) for obj in objects]


def shape_mask(shapes: list[Shape], h: int, w: int) -> torch.Tensor:
    """(H, W) mask of the union of ``shapes``; RRXError for no shape, or a union with no signal or no context."""
    if not shapes:
        raise RRXError("no signal selected: draw a rectangle, circle or polygon on the image")
    mask = torch.zeros(h, w)
    for shape in shapes:
        mask = torch.maximum(mask, _one_mask(shape, h, w))
    check_mask(mask)
    return mask


def _one_mask(shape: Shape, h: int, w: int) -> torch.Tensor:
    if shape.kind == "rectangle":
        (x0, y0), (x1, y1) = shape.points
        return rectangle_mask(h, w, x0, y0, x1, y1)
    if shape.kind == "circle":
        (cx, cy), (r, _) = shape.points
        return circle_mask(h, w, cx, cy, r)
    if shape.kind == "polygon":
        return polygon_mask(h, w, shape.points)
    raise RRXError(f"shape {shape.kind!r}; known: {', '.join(SHAPES)}")
