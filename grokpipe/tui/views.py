"""What the plot can show: one list, from which the keys, the help screen and the command palette
are all derived."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    key: str  # the key that shows it
    name: str
    description: str
    curves: tuple[tuple[str, str], ...]  # (metric, label)
    log_y: bool = False


VIEWS = (
    View("1", "loss", "train and test loss", (("train_loss", "train loss"), ("test_loss", "test loss")), log_y=True),
    View("2", "accuracy", "train and test accuracy", (("train_acc", "train acc"), ("test_acc", "test acc"))),
    View("3", "norm", "parameter norm", (("param_norm", "parameter norm"),)),
    View("4", "circuits", "Appendix B's C_gen / C_mem correct logits",
         (("gen_logit", "C_gen logit"), ("mem_logit_train", "C_mem logit"))),
)
VIEW_BY_NAME = {v.name: v for v in VIEWS}
