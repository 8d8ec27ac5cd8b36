"""RNF's evaluation callbacks: task inference routes each evaluated input to its recognised task.

A mixin of :class:`~avalanche_rnf.plugin.RNFPlugin`, in the way Avalanche composes its templates
from mixins: the training callbacks live in the plugin, the evaluation ones here. They only act
with ``task_inference`` on, once a task is learned, and publish the recognition rate per evaluated
experience (``TaskRecognition/...``).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

from torch import nn

from avalanche_rnf import glue
from avalanche_rnf.inference import TaskInferrer
from avalanche_rnf.layers import UnitLayer
from avalanche_rnf.task_norms import TaskNorms


class EvaluationCallbacks:
    """Task-inference surgery around Avalanche's evaluation of an experience."""

    inference: TaskInferrer
    task_norms: TaskNorms
    task_inference: Literal["class", "domain"] | None
    layers: list[UnitLayer]
    _in_experience: bool

    _scan: Callable[[nn.Module, Any, Any], None]
    """Reads the model's unit layers into ``layers`` (the plugin's)."""

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.task_norms.enabled and self.task_norms.kept:  # e.g. evaluating right after load_state_dict
            self.task_norms.attach(strategy.model)
        self.inference.recognised = [0, 0]
        self.inference.stop_eval()
        # during an experience (periodic evaluation) its task is not learned yet: plain outputs then
        if self.task_inference and len(self.inference.recognizer) and not self._in_experience:
            if not self.layers:  # e.g. evaluating right after load_state_dict
                self._scan(strategy.model, strategy.experience, strategy.device)
            self.inference.start_eval(strategy.model, self.layers)

    def after_eval_forward(self, strategy: Any, **kwargs: Any) -> None:
        if self.inference.tap is not None:
            strategy.mb_output = self.inference.after_forward(
                strategy.model, strategy.mb_output, strategy.mb_x, strategy.mb_y, strategy.mb_task_id,
                strategy.experience.current_experience)

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.inference.tap is None:
            return
        self.inference.stop_eval()
        values = self.inference.recognition_metrics(glue.stream_name(strategy.experience),
                                                    strategy.experience.current_experience)
        glue.publish(strategy, self, values, strategy.clock.train_iterations)
