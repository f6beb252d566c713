"""Reading models (thesis ch. 7, seeds 002 and 004), config group ``analysis``:
``create_analysis(cfg)`` by ``cfg.name``.

Each module holds the science of one analysis as batched torch functions (tested against hand-computed values and
Quantus) and registers a runner for ``rrx analyze`` with the typed config of its keys
(``@register_analysis(name, config=...)``, ``rrx.config``; the keys every analysis has are
``common.AnalysisConfig``): ``needs_masks`` (whether it reads object masks), ``run(model, data, dataset, runtime,
out_dir) -> dict`` of results keyed by the settings named in ``keyed`` (attribution method; U Analysis also order,
fill, window_fraction; IPHA the fill). ``rrx analyze`` adds every other setting to the keys, so the results of a
sweep over one checkpoint add up in ``rrx report`` and never replace each other.

- ``localisation``: pointing game, relevance mass and relevance rank accuracy with object masks; ObEy (``obey``).
- ``focus``: Focus on 2 x 2 mosaics of test images, with the model-randomisation sanity check.
- ``u_analysis``: U Analysis (thesis Alg. 4).
- ``ipha``: the Feature Impact Index (Eq. 7.2) of Iterative post-hoc attribution's masks (thesis Alg. 5-6, the
  attribution ``rrx.attributions.ipha``) and of the top-k masks of other attributions.
"""

from rrx.registry import Registry

ANALYSES = Registry("analysis", __name__)
register_analysis = ANALYSES.register


def create_analysis(cfg):
    """The runner of ``cfg.name`` for ``cfg`` (a composed ``analysis`` config, or a dict or config of some of its keys:
    the others take their defaults), after the types, ranges and choices of its keys are checked (``rrx.config.typed``;
    a key it does not have is one RRXError)."""
    from rrx.config import typed

    runner = ANALYSES.get(cfg["name"])  # an unknown name lists the known ones
    return runner(typed("analysis", cfg))


def list_analyses() -> list[str]:
    return ANALYSES.names()
