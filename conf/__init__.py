"""rrx's Hydra config package. Reading it puts every registered component's typed config into Hydra's ConfigStore
(``rrx.config.store_components``): the options of the component groups (model, dataset, method, challenge, attack,
analysis) are those dataclasses, not YAML files."""

from rrx.config import store_components

store_components()
