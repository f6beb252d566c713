"""IPHA's search (thesis 7.2, Eq. 7.1, Algs. 5-6): the binary mask of the pixels class y's probability rests on, as
an attribution (``ipha``; the thesis's "methods combination" with ADA, 8.2). The Feature Impact Index that scores
the masks is an analysis (``rrx.analyses.ipha``).

IPHA searches for the binary mask that maximises Importance(mask) = f_y(mask ⊙ x + (1 - mask) ⊙ C) (Eq. 7.1),
f_y the softmax probability of class y. Two searches (``search_mask``): ``alg6``, the hill climbing of Alg. 6 as the
thesis states it (a random start mask; at each iteration ``neighbours`` copies of the current best mask, each with
a ``block`` x ``block`` square zeroed; the best neighbour replaces the current mask only if it scores higher), run
until no block move is strictly better or the ``iterations`` budget ends (``hill_climb``); and ``greedy_top_k``,
beyond the thesis's text, a greedy deletion from all ones that ends at the top-k masks' kept share, so that IPHA
and the other attributions are compared at equal kept share (``greedy_top_k``). The mask (B, 1, H, W) is per
pixel, shared by the channels (thesis 7.4.2: 1024 features on 32 x 32 CIFAR-10). x_important keeps the masked
pixels, x_non_important the others (Alg. 5 lines 4-5); the rest is filled with the constant C, one of
``IPHA_FILLS`` (``rrx.fills``): black (``zeros``), white (``ones``), Gaussian noise (``grey_gaussian``), or the
normalisation mean (``normalisation_mean``) (7.4.2).

Images are (B, C, H, W) in [0, 1] pixel space; ``model(x)`` gives logits (B, K). Randomness comes from a CPU
``torch.Generator`` (drawn on the CPU, then moved to the images' device), so a seed gives the same masks on any
device. The model is used as given: put it in eval mode first.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> mask, x_imp, x_non = ipha(model, x, y, "zeros", iterations=100, neighbours=16, generator=g, norm_mean=None)
    >>> # x (B, 3, 32, 32) -> mask (B, 1, 32, 32) in {0, 1}; x_imp, x_non (B, 3, 32, 32)
    >>> found = hill_climb(model, x, y, torch.zeros_like(x), iterations=5000, neighbours=16, generator=g)
    >>> # found.mask (B, 1, 32, 32); found.iterations (B,) steps run; found.converged (B,) no better block move left
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from rrx.attributions.base import Attribution, register_attribution
from rrx.errors import RRXError, check_choice
from rrx.fills import OLD_SPELLINGS

# C of Eq. 7.1 (thesis Fig. 31), names of rrx.fills.FILLS; in this order (an older rrx's zero, one, gaussian, mean):
# the IPHA analysis seeds each fill's generator by its position
IPHA_FILLS = ("zeros", "ones", "grey_gaussian", "normalisation_mean")
# ``grey_gaussian``: one fixed draw per image of N(mean, std^2) per pixel and channel, clamped to [0, 1]
# (the thesis does not give its parameters; these keep about 95 % of the draws inside [0, 1] before clamping).
GAUSSIAN_MEAN, GAUSSIAN_STD = 0.5, 0.25


def current_fill(fill: str, key: str = "ipha_fill") -> str:
    """``fill`` as a name of ``IPHA_FILLS``: an older rrx's spelling (``rrx.fills.OLD_SPELLINGS``: ``zero``, ``one``,
    ``gaussian``, ``mean``) read as today's; RRXError ``<key>=<fill>; known: ...`` for any other name."""
    fill = OLD_SPELLINGS.get(fill, fill)
    check_choice(key, fill, IPHA_FILLS)
    return fill


def constant_image(
    x: torch.Tensor,
    fill: str,
    generator: torch.Generator | None = None,
    norm_mean: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """The constant C (B, C, H, W) of Eq. 7.1 for images x (B, C, H, W), on x's device and dtype.

    Args:
        x (Tensor): (B, C, H, W) images in [0, 1].
        fill (str): one of ``IPHA_FILLS`` (``rrx.fills``; an older spelling is read as today's, ``current_fill``):
            ``zeros`` (black), ``ones`` (white), ``grey_gaussian`` (N(GAUSSIAN_MEAN, GAUSSIAN_STD^2) per pixel and
            channel, one draw per image, clamped to [0, 1]) or ``normalisation_mean`` (the normalisation mean colour).
        generator (torch.Generator, optional): CPU generator for ``grey_gaussian``. Default: torch's global one.
        norm_mean (sequence of C floats or Tensor, optional): the dataset's normalisation mean, needed by
            ``normalisation_mean``.
    """
    fill = current_fill(fill, "fill")
    if fill == "zeros":
        return torch.zeros_like(x)
    if fill == "ones":
        return torch.ones_like(x)
    if fill == "grey_gaussian":
        noise = torch.randn(x.shape, generator=generator) * GAUSSIAN_STD + GAUSSIAN_MEAN
        return noise.clamp(0, 1).to(device=x.device, dtype=x.dtype)
    if norm_mean is None:
        raise RRXError(
            "fill=normalisation_mean needs the normalisation mean (norm_mean); this model or dataset gives none"
        )
    mean = torch.as_tensor(norm_mean, dtype=x.dtype).to(x.device).reshape(1, -1, 1, 1)
    return mean.expand_as(x).clone()


def apply_mask(x: torch.Tensor, mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """mask ⊙ x + (1 - mask) ⊙ C, the argument of f in Eq. 7.1; mask (B, 1, H, W) broadcasts over channels."""
    return mask * x + (1 - mask) * c


@torch.no_grad()
def class_probability(model, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """f_y(x): the softmax probability (B,) of class y (B,) for images x (B, C, H, W), in chunks of ``batch_size``."""
    step = batch_size or len(x)
    return torch.cat(
        [model(x[i : i + step]).softmax(1).gather(1, y[i : i + step, None])[:, 0] for i in range(0, len(x), step)]
    )


class Search(NamedTuple):
    """What a mask search returns: the mask (B, 1, H, W), float in {0, 1}; per image the steps it ran (B,) long, and
    whether it ended by its own rule (B,) bool rather than by running out of iterations."""

    mask: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor


def movable_blocks(mask: torch.Tensor, block: int) -> torch.Tensor:
    """(B, P) bool: which ``block`` x ``block`` squares of mask (B, 1, H, W) still hold a kept pixel, P =
    (H - block + 1) * (W - block + 1) top-left corners in row-major order (zeroing any other square leaves the mask
    as it is)."""
    return F.max_pool2d(mask, block, stride=1).flatten(1) > 0


def block_holes(index: torch.Tensor, height: int, width: int, block: int) -> torch.Tensor:
    """(..., H, W) bool: the ``block`` x ``block`` square at each position ``index`` (...) of ``movable_blocks``'s
    order (the 2 x 2 grid of thesis 7.2's get_neighbors, wholly inside the image)."""
    across = width - block + 1
    rows, cols = (index // across)[..., None], (index % across)[..., None]
    r, c = torch.arange(height, device=index.device), torch.arange(width, device=index.device)
    in_rows = (r >= rows) & (r < rows + block)  # (..., H)
    in_cols = (c >= cols) & (c < cols + block)  # (..., W)
    return in_rows[..., :, None] & in_cols[..., None, :]


def draw_positions(
    allowed: torch.Tensor, count: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` of each row's ``allowed`` (B, P) positions, uniform without replacement: the indices (B, n) and
    whether each is a real draw (B, n) bool (False where a row allows fewer than n), n = min(count, P). The keys are
    drawn on the CPU ``generator``, B x P per call whatever is allowed, so a seed gives the same draws on any device."""
    keys = torch.rand(allowed.shape, generator=generator).to(allowed.device).masked_fill(~allowed, 2.0)  # in [0, 1)
    drawn = keys.topk(min(count, allowed.shape[1]), dim=1, largest=False)  # smallest keys first
    return drawn.indices, drawn.values < 2.0


def _score(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    mask: torch.Tensor,
    index: torch.Tensor,
    real: torch.Tensor,
    block: int,
    batch_size: int | None,
) -> torch.Tensor:
    """f_y (B, N) of the candidates ``mask`` with the square at ``index`` (B, N) zeroed, -inf where not ``real``
    (B, N): the real candidates of all images in one forward pass (chunks of ``batch_size``), each chunk of
    candidate masks built only when it is scored."""
    b, n = index.shape
    scores = torch.full((b, n), -math.inf, device=x.device)
    which = real.nonzero()  # (M, 2): image, slot
    step = batch_size or max(len(which), 1)
    for start in range(0, len(which), step):
        image, slot = which[start : start + step].unbind(1)
        candidates = (
            mask[image] * ~block_holes(index[image, slot], x.shape[2], x.shape[3], block)[:, None]
        )  # (m, 1, H, W)
        scores[image, slot] = class_probability(model, apply_mask(x[image], candidates, c[image]), y[image]).float()
    return scores


def _check_search(iterations: int, neighbours: int, block: int, height: int, width: int) -> None:
    if iterations < 1 or neighbours < 1:
        raise RRXError(
            f"IPHA needs iterations >= 1 and neighbours >= 1; got iterations={iterations}, neighbours={neighbours}"
        )
    if not 1 <= block <= min(height, width):
        raise RRXError(f"IPHA block={block} must be between 1 and the image side ({height} x {width})")


def hill_climb(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    iterations: int,
    neighbours: int,
    block: int = 2,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
) -> Search:
    """``search=alg6``, Alg. 6 as the thesis states it, run to its optimum: the hill-climbing mask maximising
    f_y(apply_mask(x, mask, c)), with the steps run and whether it converged.

    The start is the generator's first draw, Bernoulli(0.5) per pixel (line 1). Each step draws ``neighbours``
    block positions per image (line 3), scores the B * neighbours candidates (the current mask with that
    ``block`` x ``block`` square zeroed) in one forward pass (chunked by ``batch_size``), and moves an image to its
    best neighbour (the first, on a tie; line 7) only where that scores strictly higher than its current mask
    (lines 10-11). Neighbours only ever zero pixels, so a pixel removed from the mask never comes back: the result
    is a subset of the random start.

    To know when the climb is over, the positions are drawn without replacement from those not yet scored against
    the current mask (all of them again after every move), leaving out squares with no kept pixel, which change
    nothing. This changes which neighbours a step sees, not the acceptance rule; once every position has been
    scored against the current mask and none is strictly better (a full scan of all block moves, at no extra
    forward pass), no later step of Alg. 6 could move, and the image stops: ``converged``. ``iterations`` is the
    budget; an image still climbing when it ends is not converged.

    Args:
        model (nn.Module): [0, 1] images (B, C, H, W) -> logits (B, K).
        x (Tensor): (B, C, H, W) images.  y (LongTensor): (B,) classes.  c (Tensor): (B, C, H, W) constant.
        iterations (int): the most steps per image (num_iterations), at least 1.
        neighbours (int): candidates per image and step (num_neighbors), at least 1.
        block (int, optional): side of the zeroed square. Default: 2 (thesis 7.2).
        generator (torch.Generator, optional): CPU generator for the start and the positions. Default: global RNG.
        batch_size (int, optional): images per forward pass. Default: all candidates of a step at once.
    """
    b, _, h, w = x.shape
    _check_search(iterations, neighbours, block, h, w)
    best = torch.bernoulli(torch.full((b, 1, h, w), 0.5), generator=generator).to(device=x.device, dtype=x.dtype)
    best_score = class_probability(model, apply_mask(x, best, c), y, batch_size).float()  # (B,)
    tried = torch.zeros(b, (h - block + 1) * (w - block + 1), dtype=torch.bool, device=x.device)  # none better
    steps = torch.zeros(b, dtype=torch.long, device=x.device)
    rows = torch.arange(b, device=x.device)
    for _ in range(iterations):  # line 2
        untried = movable_blocks(best, block) & ~tried
        climbing = untried.any(1)  # (B,)
        if not climbing.any():
            break
        index, real = draw_positions(untried, neighbours, generator)  # line 3, (B, N)
        scores = _score(model, x, y, c, best, index, real, block, batch_size)  # lines 6-9, (B, N)
        pick = scores.argmax(1)  # (B,) the first best neighbour (line 7's strict <)
        next_score = scores[rows, pick]
        improves = climbing & (next_score > best_score)  # line 10
        chosen = best * ~block_holes(index[rows, pick], h, w, block)[:, None]  # (B, 1, H, W)
        best = torch.where(improves[:, None, None, None], chosen, best)  # line 11
        best_score = torch.where(improves, next_score, best_score)
        scored = torch.zeros_like(tried).scatter(1, index, real)  # a row's indices are distinct
        tried = (tried | scored) & ~improves[:, None]
        steps += climbing
    return Search(best, steps, ~(movable_blocks(best, block) & ~tried).any(1))


def greedy_top_k(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    iterations: int,
    neighbours: int,
    block: int = 2,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    k: int | None = None,
) -> Search:
    """``search=greedy_top_k``, beyond the thesis's text: a search of Eq. 7.1 that ends at the kept share of the top-k
    masks it is compared with (k = half the pixels by default), with the steps run and whether it got there.

    Why: Alg. 6 starts from a random half and only removes blocks, so its masks are subsets of a random half and keep
    a share no other method is asked to match; compared at equal kept share, IPHA and the top-k masks answer the same
    question. The search is a greedy deletion: it starts from all ones (f_y(x) itself); each step draws ``neighbours``
    of the ``block`` x ``block`` squares that still hold a kept pixel (uniform without replacement, as in
    ``hill_climb``; ``neighbours`` >= the number of positions scans them all), scores them in one forward pass and
    takes the best (the first, on a tie) even where it scores lower than the current mask, since pixels must go;
    until at most k pixels are kept. The removal order is then read as an attribution map (a pixel removed later
    ranks higher, one never removed highest) and the mask is its ``top_k_mask``: exactly k pixels, the last square's
    pixels coming back in row-major order where it removed more than were left to remove. An image that runs out of
    ``iterations`` first keeps its larger mask and is not converged (it needs at most H * W - k steps).

    Args as in ``hill_climb``; k (int, optional): the kept pixels to end at. Default: H * W // 2, as ``top_k_mask``.
    """
    b, _, h, w = x.shape
    _check_search(iterations, neighbours, block, h, w)
    k = h * w // 2 if k is None else k
    if not 0 <= k <= h * w:
        raise RRXError(f"IPHA greedy_top_k: k={k} must be between 0 and the {h * w} pixels of the image")
    mask = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
    removed_at = torch.full((b, 1, h, w), math.inf, device=x.device)  # the step that removed each pixel
    steps = torch.zeros(b, dtype=torch.long, device=x.device)
    rows = torch.arange(b, device=x.device)
    for step in range(iterations):
        removing = mask.flatten(1).sum(1) > k  # (B,)
        if not removing.any():
            break
        index, real = draw_positions(movable_blocks(mask, block), neighbours, generator)  # (B, N)
        scores = _score(model, x, y, c, mask, index, real & removing[:, None], block, batch_size)
        hole = block_holes(index[rows, scores.argmax(1)], h, w, block)[:, None]  # (B, 1, H, W)
        gone = hole & (mask > 0) & removing[:, None, None, None]
        removed_at = removed_at.masked_fill(gone, float(step))
        mask = mask.masked_fill(gone, 0.0)
        steps += removing
    reached = mask.flatten(1).sum(1) <= k
    exact = top_k_mask(removed_at[:, 0], k).to(mask.dtype)
    return Search(torch.where(reached[:, None, None, None], exact, mask), steps, reached)


SEARCHES = {"alg6": hill_climb, "greedy_top_k": greedy_top_k}  # analysis.search: Alg. 6 as stated | beyond the text


def search_mask(
    search: str,
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    iterations: int,
    neighbours: int,
    block: int = 2,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
) -> Search:
    """The mask of ``search`` (``alg6``: ``hill_climb``; ``greedy_top_k``), arguments as in ``hill_climb``."""
    check_choice("search", search, tuple(SEARCHES))
    return SEARCHES[search](model, x, y, c, iterations, neighbours, block, generator, batch_size)


def ipha(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    fill: str,
    iterations: int,
    neighbours: int,
    generator: torch.Generator | None,
    norm_mean: Sequence[float] | torch.Tensor | None,
    block: int = 2,
    batch_size: int | None = None,
    search: str = "alg6",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alg. 5: (mask (B, 1, H, W), x_important, x_non_important (B, C, H, W)) of images x for classes y.

    The constant is drawn first (``constant_image``), then the mask (``search_mask``), both from ``generator``;
    x_important = mask ⊙ x + (1 - mask) ⊙ C and x_non_important = (1 - mask) ⊙ x + mask ⊙ C (lines 4-5).
    Arguments as in ``constant_image`` and ``hill_climb``; ``search``: ``alg6`` (default) or ``greedy_top_k``.
    """
    c = constant_image(x, fill, generator, norm_mean)
    mask = search_mask(search, model, x, y, c, iterations, neighbours, block, generator, batch_size).mask
    return mask, apply_mask(x, mask, c), apply_mask(x, 1 - mask, c)


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


@register_attribution("ipha")
class IPHASearch(Attribution):
    """IPHA's mask as a map (B, H, W): 1 on the pixels kept, 0 on those removed (``ipha``, ``search=alg6``), the
    ``normalisation_mean`` fill read from the model's ``mean``. A binary mask: the signed form is the same map.

    Args:
        ipha_iterations (int, optional): the most steps per image. Default: 50.
        ipha_neighbours (int, optional): candidates scored per image and step. Default: 8.
        ipha_fill (str, optional): C of Eq. 7.1, one of ``IPHA_FILLS`` (an older spelling is read as today's).
            Default: ``zeros``.
        generator (torch.Generator, optional): CPU generator of the fill and the search. Default: torch's
            global one.
    """

    display_name = "IPHA"
    needs_gradients = False
    needs_classes = True

    def __init__(
        self,
        ipha_iterations: int = 50,
        ipha_neighbours: int = 8,
        ipha_fill: str = "zeros",
        generator: torch.Generator | None = None,
    ):
        self.iterations, self.neighbours = ipha_iterations, ipha_neighbours
        self.fill = current_fill(ipha_fill)
        self.generator = generator

    def compute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool) -> torch.Tensor:
        mask, _, _ = ipha(
            model,
            x.detach(),
            y,
            self.fill,
            self.iterations,
            self.neighbours,
            self.generator,
            getattr(model, "mean", None),
        )  # (B, 1, H, W)
        return mask[:, 0]
