"""Group DRO (Sagawa et al. 2020, "Distributionally Robust Neural Networks", Algorithm 1): minimise the worst
group's expected loss by an online mirror ascent on the group weights q.

Per batch, with l_g the mean loss of group g's images in the batch (0 for a group without any, as the reference
``group_DRO/loss.py``'s ``compute_group_avg``):

    q_g <- q_g * exp(eta * l_g),   q <- q / sum_g q_g,   loss = sum_g q_g * l_g

q starts uniform over the groups of the training set and is updated before the loss is taken (as the reference's
``compute_robust_loss``). It is kept per rank under several ranks, and with the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.errors import RRXError
from rrx.methods import register_method
from rrx.methods.base import Method
from rrx.methods.groups import GroupsConfig, grouped_name


def group_mean_losses(losses: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(G,) the mean of ``losses`` (B,) over each group's items (``groups`` (B,) indices); 0 where a group has none."""
    member = (groups[None, :] == torch.arange(n_groups, device=groups.device)[:, None]).float()  # (G, B)
    count = member.sum(1)
    return member @ losses / (count + (count == 0).float())


def updated_weights(q: torch.Tensor, group_losses: torch.Tensor, step_size: float) -> torch.Tensor:
    """Algorithm 1's step: q * exp(eta * l), normalised to sum 1."""
    q = q * torch.exp(step_size * group_losses)
    return q / q.sum()


@dataclass
class GroupDROConfig(GroupsConfig):
    """group DRO (Sagawa et al. 2020): the loss of the groups weighted by exponentiated-gradient weights"""

    name: str = param("groupdro", "the registered name of the method")
    step_size: float = param(
        0.01, "eta, the step of the group weights' update (the reference's robust_step_size)", low=0
    )


@register_method("groupdro", config=GroupDROConfig)
class GroupDRO(Method):
    display_name = "GroupDRO"
    needs_groups = True
    groups_in_batch = True

    def __init__(self, cfg):
        super().__init__(cfg)
        if self.rrda:
            raise RRXError("method=groupdro with rrda=true: RRDA images mix two images' groups; drop method.rrda")
        self.step_size = float(cfg.step_size)
        self.display_name = grouped_name(type(self).display_name, cfg)
        self.q: torch.Tensor | None = None

    def set_groups(self, groups: list[int], names: list[list[str]]) -> None:
        if self.q is None or len(self.q) != len(names):
            self.q = torch.full((len(names),), 1.0 / len(names))

    def loss(self, model, x, y, mask, groups=None):
        assert self.q is not None and groups is not None  # set_groups, and the items carry their groups
        logits = model(x)
        per_image = F.cross_entropy(logits, y, reduction="none")
        group_losses = group_mean_losses(per_image, groups, len(self.q))
        self.q = updated_weights(self.q.to(x.device), group_losses.detach().float(), self.step_size)
        loss = group_losses @ self.q.to(group_losses.dtype)
        return loss, {
            "ce": per_image.mean().detach(),
            "logits": logits.detach(),
            "worst_group_loss": group_losses.max().detach(),
        }

    def state_dict(self) -> dict:
        return {} if self.q is None else {"groupdro_q": self.q.cpu().tolist()}

    def load_state_dict(self, state: dict) -> None:
        if "groupdro_q" in state:
            self.q = torch.tensor(state["groupdro_q"])
