"""Iterative Post-Hoc Attribution, IPHA (thesis 7.2, Eq. 7.1, Algs. 5-6), and the Feature Impact Index (Eq. 7.2).

IPHA searches for the binary mask that maximises Importance(mask) = f_y(mask ⊙ x + (1 - mask) ⊙ C) (Eq. 7.1) by
hill climbing (Alg. 6): a random start mask; at each iteration ``neighbours`` copies of the current best mask, each
with a ``block`` x ``block`` square zeroed at a random position; the best neighbour replaces the current mask only
if it scores higher. The mask (B, 1, H, W) is per pixel, shared by the channels (thesis 7.4.2: 1024 features on
32 x 32 CIFAR-10). x_important keeps the masked pixels, x_non_important the others (Alg. 5 lines 4-5); the rest
is filled with the constant C: black (``zero``), white (``one``), Gaussian noise, or the normalisation mean (7.4.2).

f_y is the softmax probability of class y, so the Feature Impact Index |f_y(x) - f_y(x_selected)| (Eq. 7.2) lies
in [0, 1] like the thesis's percentages (Figs. 32-33). The other attribution methods are compared through their
``top_k_mask``, k = half the pixels (7.4.2: k = 512 of 1024).

Images are (B, C, H, W) in [0, 1] pixel space; ``model(x)`` gives logits (B, K). Randomness comes from a CPU
``torch.Generator`` (drawn on the CPU, then moved to the images' device), so a seed gives the same masks on any
device. The model is used as given: put it in eval mode first.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> mask, x_imp, x_non = ipha(model, x, y, "zero", iterations=100, neighbours=16, generator=g, norm_mean=None)
    >>> # x (B, 3, 32, 32) -> mask (B, 1, 32, 32) in {0, 1}; x_imp, x_non (B, 3, 32, 32)
    >>> fii = feature_impact_index(model, x, x_non, y)  # (B,)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rrx.analyses import register_analysis
from rrx.analyses.common import attribution_list, batches, explain, fill_mean, summary
from rrx.errors import RRXError, check_choice
from rrx.report.figures import image_strip

CONSTANTS = ("zero", "one", "gaussian", "mean")  # C of Eq. 7.1 (thesis Fig. 31)
# The Gaussian constant: one fixed draw per image of N(mean, std^2) per pixel and channel, clamped to [0, 1]
# (the thesis does not give its parameters; these keep about 95 % of the draws inside [0, 1] before clamping).
GAUSSIAN_MEAN, GAUSSIAN_STD = 0.5, 0.25


def constant_image(x: torch.Tensor, constant: str, generator: torch.Generator | None = None,
                   norm_mean: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """The constant C (B, C, H, W) of Eq. 7.1 for images x (B, C, H, W), on x's device and dtype.

    Args:
        x (Tensor): (B, C, H, W) images in [0, 1].
        constant (str): ``zero`` (black), ``one`` (white), ``gaussian`` (N(GAUSSIAN_MEAN, GAUSSIAN_STD^2) per pixel
            and channel, one draw per image, clamped to [0, 1]) or ``mean`` (the normalisation mean colour).
        generator (torch.Generator, optional): CPU generator for ``gaussian``. Default: torch's global one.
        norm_mean (sequence of C floats or Tensor, optional): the dataset's normalisation mean, needed by ``mean``.
    """
    check_choice("constant", constant, CONSTANTS)
    if constant == "zero":
        return torch.zeros_like(x)
    if constant == "one":
        return torch.ones_like(x)
    if constant == "gaussian":
        noise = torch.randn(x.shape, generator=generator) * GAUSSIAN_STD + GAUSSIAN_MEAN
        return noise.clamp(0, 1).to(device=x.device, dtype=x.dtype)
    if norm_mean is None:
        raise RRXError("constant=mean needs the normalisation mean (norm_mean); this model or dataset gives none")
    mean = torch.as_tensor(norm_mean, dtype=x.dtype).to(x.device).reshape(1, -1, 1, 1)
    return mean.expand_as(x).clone()


def apply_mask(x: torch.Tensor, mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """mask ⊙ x + (1 - mask) ⊙ C, the argument of f in Eq. 7.1; mask (B, 1, H, W) broadcasts over channels."""
    return mask * x + (1 - mask) * c


@torch.no_grad()
def class_probability(model, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """f_y(x): the softmax probability (B,) of class y (B,) for images x (B, C, H, W), in chunks of ``batch_size``."""
    step = batch_size or len(x)
    return torch.cat([model(x[i : i + step]).softmax(1).gather(1, y[i : i + step, None])[:, 0]
                      for i in range(0, len(x), step)])


def random_blocks(batch: int, count: int, height: int, width: int, block: int,
                  generator: torch.Generator | None, device) -> torch.Tensor:
    """(batch, count, H, W) bool: one ``block`` x ``block`` square per entry, its top-left corner uniform over the
    positions that keep it wholly inside the image (the 2 x 2 grid of thesis 7.2's get_neighbors)."""
    rows = torch.randint(height - block + 1, (batch, count, 1), generator=generator).to(device)
    cols = torch.randint(width - block + 1, (batch, count, 1), generator=generator).to(device)
    r, c = torch.arange(height, device=device), torch.arange(width, device=device)
    in_rows = (r >= rows) & (r < rows + block)  # (batch, count, H)
    in_cols = (c >= cols) & (c < cols + block)  # (batch, count, W)
    return in_rows[..., :, None] & in_cols[..., None, :]


def hill_climb(model, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, iterations: int, neighbours: int,
               block: int = 2, generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
    """Alg. 6: the hill-climbing mask (B, 1, H, W), float in {0, 1}, maximising f_y(apply_mask(x, mask, c)).

    Every image climbs at once: the start is the generator's first draw, Bernoulli(0.5) per pixel (line 1); each
    iteration draws ``neighbours`` block positions per image (line 3; positions may repeat), scores all
    B * neighbours candidates in one forward pass (chunked by ``batch_size``), and moves an image to its best
    neighbour (the first, on a tie) only where that scores strictly higher than its current mask (lines 10-11).
    Neighbours only ever zero pixels, so a pixel removed from the mask never comes back.

    Args:
        model (nn.Module): [0, 1] images (B, C, H, W) -> logits (B, K).
        x (Tensor): (B, C, H, W) images.  y (LongTensor): (B,) classes.  c (Tensor): (B, C, H, W) constant.
        iterations (int): hill-climbing steps (num_iterations), at least 1.
        neighbours (int): candidates per image and step (num_neighbors), at least 1.
        block (int, optional): side of the zeroed square. Default: 2 (thesis 7.2).
        generator (torch.Generator, optional): CPU generator for the start and the positions. Default: global RNG.
        batch_size (int, optional): images per forward pass. Default: all B * neighbours at once.
    """
    b, _, h, w = x.shape
    if iterations < 1 or neighbours < 1:
        raise RRXError(f"IPHA needs iterations >= 1 and neighbours >= 1; "
                       f"got iterations={iterations}, neighbours={neighbours}")
    if not 1 <= block <= min(h, w):
        raise RRXError(f"IPHA block={block} must be between 1 and the image side ({h} x {w})")
    best = torch.bernoulli(torch.full((b, 1, h, w), 0.5), generator=generator).to(device=x.device, dtype=x.dtype)
    best_score = class_probability(model, apply_mask(x, best, c), y, batch_size)  # (B,)
    for _ in range(iterations):
        holes = random_blocks(b, neighbours, h, w, block, generator, x.device)  # (B, N, H, W)
        candidates = best[:, None] * ~holes[:, :, None]  # (B, N, 1, H, W)
        scores = _score(model, x, y, c, candidates.reshape(b * neighbours, 1, h, w), batch_size).reshape(b, neighbours)
        pick = scores.argmax(1)  # (B,) the first best neighbour (Alg. 6 line 7's strict <)
        next_score = scores.gather(1, pick[:, None])[:, 0]
        improves = next_score > best_score
        chosen = candidates[torch.arange(b, device=x.device), pick]  # (B, 1, H, W)
        best = torch.where(improves[:, None, None, None], chosen, best)
        best_score = torch.where(improves, next_score, best_score)
    return best


def _score(model, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, masks: torch.Tensor,
           batch_size: int | None) -> torch.Tensor:
    """f_y (B * N,) of the candidate masks (B * N, 1, H, W), N per image in order; each chunk of ``batch_size``
    masked images is built only when it is scored."""
    n = len(masks) // len(x)
    step = batch_size or len(masks)
    scores = []
    for start in range(0, len(masks), step):
        image = torch.arange(start, min(start + step, len(masks)), device=x.device) // n  # whose candidate
        scores.append(class_probability(model, apply_mask(x[image], masks[start : start + step], c[image]), y[image]))
    return torch.cat(scores)


def ipha(model, x: torch.Tensor, y: torch.Tensor, constant: str, iterations: int, neighbours: int,
         generator: torch.Generator | None, norm_mean: Sequence[float] | torch.Tensor | None, block: int = 2,
         batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alg. 5: (mask (B, 1, H, W), x_important, x_non_important (B, C, H, W)) of images x for classes y.

    The constant is drawn first (``constant_image``), then the mask (``hill_climb``), both from ``generator``;
    x_important = mask ⊙ x + (1 - mask) ⊙ C and x_non_important = (1 - mask) ⊙ x + mask ⊙ C (lines 4-5).
    Arguments as in ``constant_image`` and ``hill_climb``.
    """
    c = constant_image(x, constant, generator, norm_mean)
    mask = hill_climb(model, x, y, c, iterations, neighbours, block, generator, batch_size)
    return mask, apply_mask(x, mask, c), apply_mask(x, 1 - mask, c)


def feature_impact_index(model, x: torch.Tensor, x_selected: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 7.2: |f_y(x) - f_y(x_selected)| (B,), f_y the softmax probability of class y.

    Low on x_important and high on x_non_important means the mask found the features the prediction rests on.
    """
    return (class_probability(model, x, y) - class_probability(model, x_selected, y)).abs()


def top_k_mask(maps: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """(B, 1, H, W) float mask, 1 on the k pixels of largest attribution of maps (B, H, W) (thesis 7.4.2: the
    top-k features of the other attribution methods). Default k: half the pixels, rounded down. Ties go to
    the earlier pixel in row-major order."""
    b, h, w = maps.shape
    k = h * w // 2 if k is None else k
    if not 0 <= k <= h * w:
        raise RRXError(f"top-k mask: k={k} must be between 0 and the {h * w} pixels of the map")
    order = torch.sort(maps.reshape(b, -1), dim=1, descending=True, stable=True).indices[:, :k]
    mask = torch.zeros(b, h * w, device=maps.device)
    return mask.scatter(1, order, 1.0).reshape(b, 1, h, w)


@register_analysis("ipha")
class IPHA:
    """IPHA and the Feature Impact Index (thesis 7.4.2, Figs. 32-33) on the test images of ``cfg.variation``: for each
    constant in ``cfg.constant``, IPHA's mask (``cfg.iterations`` x ``cfg.neighbours``, ``cfg.block``) and the top-k
    masks (k = half the pixels) of each attribution in ``cfg.compare`` (of the label) select x_important and
    x_non_important; FII(f, x, x_selected) per image, averaged.

    Results: ``{constant: {"important" | "non_important": {method: {"mean", "std", "n", "undefined"}},
    "kept": {method: share of pixels kept}}}``, methods ``ipha`` and the compared attributions; ``cfg.examples``
    images drawn per constant (``ipha_<constant>_<k>.png``: x, x_important, x_non_important).
    """

    needs_masks = False
    keyed = ("constant",)  # the settings its result keys name

    def __init__(self, cfg):
        self.constants = [cfg.constant] if isinstance(cfg.constant, str) else list(cfg.constant)
        if not self.constants:
            raise RRXError(f"analysis.constant is empty; give one or more of {', '.join(CONSTANTS)}")
        for constant in self.constants:
            check_choice("analysis.constant", constant, CONSTANTS)
        self.compare = attribution_list("analysis.compare", cfg.compare) if cfg.compare else []
        self.iterations, self.neighbours, self.block = int(cfg.iterations), int(cfg.neighbours), int(cfg.block)
        if min(self.iterations, self.neighbours, self.block) < 1:
            raise RRXError(f"analysis.iterations={self.iterations}, analysis.neighbours={self.neighbours} and "
                           f"analysis.block={self.block} must each be at least 1")
        self.examples, self.seed, self.ig_steps = int(cfg.examples), int(cfg.seed), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        methods = ["ipha", *self.compare]
        fii = {c: {part: {m: [] for m in methods} for part in ("important", "non_important")} for c in self.constants}
        kept = {c: {m: [] for m in methods} for c in self.constants}
        drawn = {c: 0 for c in self.constants}
        # one generator per constant, so a constant's results do not depend on which others run beside it
        generators = {c: torch.Generator().manual_seed(self.seed * len(CONSTANTS) + CONSTANTS.index(c)) for c in self.constants}
        mean = fill_mean(model, dataset)
        for x, y, _ in batches(data, runtime, "ipha"):
            top_k = {m: top_k_mask(explain(model, x, y, m, self.ig_steps)) for m in self.compare}  # (B, 1, H, W)
            for constant in self.constants:
                c = constant_image(x, constant, generators[constant], mean)
                masks = {"ipha": hill_climb(model, x, y, c, self.iterations, self.neighbours, self.block, generators[constant],
                                            runtime.batch_size), **top_k}
                for method, mask in masks.items():
                    x_important, x_non_important = apply_mask(x, mask, c), apply_mask(x, 1 - mask, c)
                    fii[constant]["important"][method] += feature_impact_index(model, x, x_important, y).tolist()
                    fii[constant]["non_important"][method] += feature_impact_index(model, x, x_non_important, y).tolist()
                    kept[constant][method] += mask.mean((1, 2, 3)).tolist()
                    if method == "ipha":
                        drawn[constant] = self._draw(x, x_important, x_non_important, constant, drawn[constant], out_dir)
        return {c: {part: {m: summary(v) for m, v in per.items()} for part, per in fii[c].items()}
                | {"kept": {m: sum(v) / len(v) for m, v in kept[c].items()}} for c in self.constants}

    def _draw(self, x, x_important, x_non_important, constant: str, done: int, out_dir) -> int:
        """Draw the first images up to ``cfg.examples`` per constant; returns how many are drawn."""
        for b in range(min(len(x), self.examples - done)):
            shown = torch.stack([x[b], x_important[b], x_non_important[b]]).permute(0, 2, 3, 1).float().cpu().numpy()
            image_strip(list(shown), ["x", "x_important", "x_non_important"], out_dir / f"ipha_{constant}_{done + b}.png",
                        f"IPHA, constant {constant}")
        return max(done, min(self.examples, done + len(x)))
