"""Tasks (``task=``): what is trained and how it is scored, driven by the one training loop of ``rrx.train``.

``create_task(cfg)`` by ``cfg.task``; a task implements ``rrx.tasks.base.Task`` and registers with
``@register_task("name")`` in the module named after it (``classification``, ``segmentation``).
"""

from rrx.registry import Registry

TASKS = Registry("task", __name__)
register_task = TASKS.register


def create_task(cfg):
    return TASKS.get(cfg.task)(cfg)
