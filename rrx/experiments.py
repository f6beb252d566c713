"""What an experiment preset (``conf/experiment/``) sets per method, applied to a job's config before it runs.

A grid sweeps methods whose typed configs have different keys (``method=standard`` has no ``lam``, only RRR and
GradMask have ``reduction``), so a preset cannot write them into ``method`` for all. It says instead:

- ``grid_lam``: this job's lambda, usually an interpolation into its ``lambda_grid`` (thesis Table 7) by
  ``method.name`` and ``lambda_index``; a method with a penalty takes it as ``method.lam``. Null: the grid has no
  lambda for this job (a list shorter than the sweep's ``lambda_index`` values), which a sweep skips.
- ``<group>_settings.<name>`` (``method_settings``, ``model_settings``, ...): keys merged into the config of the
  group's component of that ``name`` (a key it does not have is refused), e.g. ``model.pretrained`` for the models
  that have weights, ``method.reduction`` for RRR and GradMask only. Null: none.

- ``mask_grid.<method key>`` with ``mask_index``: the labelled-mask fraction p of each job (``mask=fraction``), by
  the method's name (``_rrda`` added for RRDA: ``standard_rrda``); null: the labelled masks; a method not listed
  runs once, on the labelled masks; a ``mask_index`` past its list is a job the sweep skips.

The command line's own ``<group>.<key>=`` values win over both, as over any preset value. Applied once: the
config that comes out holds the values, not the settings (``apply_experiment`` of it changes nothing).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from rrx.config import GROUPS
from rrx.errors import RRXError


def grid_has_no_lambda(cfg: DictConfig) -> str | None:
    """Why the experiment's grid has no job here (``grid_lam`` is null, or ``mask_grid`` has no mask source at the
    job's ``mask_index``), or None."""
    if "grid_lam" in cfg and cfg.grid_lam is None:
        return (
            f"the experiment's lambda_grid has no lambda for method {cfg.method.name} at "
            f"lambda_index={cfg.get('lambda_index')}"
        )
    fractions = _mask_fractions(cfg)
    if fractions is not None and int(cfg.get("mask_index", 0)) >= len(fractions):
        return f"the experiment's mask_grid has no mask for method {_grid_key(cfg)} at mask_index={cfg.mask_index}"
    return None


def _grid_key(cfg: DictConfig) -> str:
    """The method's key in ``mask_grid``: its name, with ``_rrda`` where it trains on RRDA images (``rrda`` is
    ``standard_rrda``)."""
    return f"{cfg.method.name}_rrda" if cfg.method.get("rrda") else str(cfg.method.name)


def _mask_fractions(cfg: DictConfig) -> list | None:
    """The ``mask_grid`` list of the job's method (null entries: the labelled masks; a method not listed has one,
    labelled), or None where the experiment has no ``mask_grid``."""
    grid = cfg.get("mask_grid")
    if not isinstance(grid, DictConfig):
        return None
    return list(grid.get(_grid_key(cfg), [None]))


def apply_experiment(cfg: DictConfig, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``cfg`` with ``grid_lam`` as ``method.lam`` (for a method that has one) and each ``<group>_settings`` merged
    into its group, then the command line's ``overrides`` of those groups' keys set again (they win); an RRXError
    when the grid has no lambda for the job (``grid_has_no_lambda``)."""
    reason = grid_has_no_lambda(cfg)
    if reason is not None:
        raise RRXError(reason)
    given = _group_keys(overrides)
    for group in GROUPS:
        settings = cfg.get(f"{group}_settings")
        node = cfg.get(group)
        own = settings.get(node.name) if isinstance(settings, DictConfig) and isinstance(node, DictConfig) else None
        if own is not None:
            with open_dict(cfg):
                cfg[group] = OmegaConf.merge(node, own)  # the typed node refuses a key the component lacks
    if "grid_lam" in cfg and "lam" in cfg.method and "method.lam" not in given:
        cfg.method.lam = cfg.grid_lam
    fractions = _mask_fractions(cfg)
    if fractions is not None and fractions[int(cfg.get("mask_index", 0))] is not None:
        from rrx.config import component

        with open_dict(cfg):  # mask=fraction with this job's p (mask.seed stays the run's seed)
            cfg.mask = component("mask", "fraction", p=float(fractions[int(cfg.get("mask_index", 0))]))
    for key, value in given.items():
        OmegaConf.update(cfg, key, value, merge=False)
    with open_dict(cfg):
        for key in ["grid_lam", "mask_grid", *(f"{group}_settings" for group in GROUPS)]:
            cfg.pop(key, None)
    return cfg


def _group_keys(overrides: list[str] | tuple[str, ...]) -> dict:
    """The ``<group>.<key>=value`` overrides of the component groups, by key, with their values parsed as Hydra
    parses them (a sweep job's overrides hold single values)."""
    if not overrides:
        return {}
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {
        o.key_or_group: o.value()
        for o in parsed
        if "." in o.key_or_group and o.key_or_group.split(".", 1)[0] in GROUPS and not o.is_delete()
    }
