"""When an experience's units are chosen, and the learning rate of the retraining after it.

:class:`RetrainingSchedule` counts an experience's epochs and iterations and says when the kept
sub-network starts to train alone (:class:`~avalanche_rnf.options.Retraining`); it scales the
optimizer's learning rates for each retraining step and gives them back right after it.
"""

from __future__ import annotations

import warnings
from typing import Any

from avalanche_rnf.options import Retraining


class RetrainingSchedule:
    """The retraining of one experience at a time (``options=None``: units are chosen at the end)."""

    def __init__(self, options: Retraining | None) -> None:
        self.epochs = options.epochs if options is not None else 0
        self.lr_scale = options.lr_scale if options is not None else 1.0
        self._epochs_done = 0
        self._iterations = 0
        self._select_at: int | None = None
        self._unscaled: list[float] | None = None
        self._off = False

    def begin(self, strategy: Any, online: bool, warned: set[str]) -> None:
        """An experience of ``strategy`` begins: retraining as scheduled, or off in an online stream."""
        if online:
            self.stop(warned)
        else:
            self.start(getattr(strategy, "train_epochs", None), getattr(strategy, "dataloader", None))

    def start(self, train_epochs: int | None, loader: Any) -> None:
        """A new experience of ``train_epochs`` epochs over ``loader`` begins."""
        if self.epochs and train_epochs is not None and self.epochs >= train_epochs:
            raise ValueError(
                f"retrain_epochs={self.epochs} leaves none of the strategy's {train_epochs} training epochs to "
                "train the whole network before choosing units: use fewer retrain_epochs or more train_epochs."
            )
        self._epochs_done, self._iterations = 0, 0
        self._select_at = None
        self._off = False
        if not float(self.epochs).is_integer():  # a fraction: choose after that share of the iterations
            if train_epochs is None:
                raise ValueError("a fractional retrain_epochs needs a strategy with train_epochs")
            try:
                per_epoch = len(loader)
            except TypeError as error:
                raise ValueError("a fractional retrain_epochs needs a training data loader with a length") from error
            self._select_at = max(1, round((train_epochs - self.epochs) * per_epoch))

    def stop(self, warned: set[str]) -> None:
        """No retraining in this experience (an online stream passes over it once); says so once."""
        self._epochs_done, self._iterations, self._select_at = 0, 0, None
        self._off = True
        if self.epochs and "online retraining" not in warned:
            warned.add("online retraining")
            warnings.warn("RNF: retraining needs a second pass over an experience; it is off in online streams.",
                          stacklevel=5)

    def iteration_done(self) -> bool:
        """Count a training iteration; ``True`` when the units are to be chosen now."""
        self._iterations += 1
        return self._iterations == self._select_at

    def epoch_done(self, train_epochs: int) -> bool:
        """Count a training epoch; ``True`` when the units are to be chosen now."""
        self._epochs_done += 1
        whole = self.epochs and self._select_at is None and not self._off
        return bool(whole and self._epochs_done == train_epochs - self.epochs)

    def scale_lrs(self, param_groups: list[dict[str, Any]]) -> None:
        """Multiply the learning rates by ``lr_scale`` for one retraining step."""
        self.give_back_lrs(param_groups)  # a step that raised before it ended left its rates scaled
        if self.lr_scale != 1:
            self._unscaled = [group["lr"] for group in param_groups]
            for group in param_groups:
                group["lr"] = group["lr"] * self.lr_scale

    def give_back_lrs(self, param_groups: list[dict[str, Any]]) -> None:
        """Put back the learning rates :meth:`scale_lrs` scaled."""
        if self._unscaled is not None:
            for group, lr in zip(param_groups, self._unscaled):
                group["lr"] = lr
            self._unscaled = None
