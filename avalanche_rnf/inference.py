"""Task inference: recognise each input's task where the stream gives no task labels.

``"class"`` mode keeps each task's output rows and lets only the recognised task's classes win;
``"domain"`` mode gives each task its own units in front of the shared output layer and reads only
the recognised task's units there (:class:`~avalanche_rnf.options.TaskInference`). The plugin
calls :class:`TaskInferrer` at the moments named by its methods; it holds the recogniser and the
frozen columns of the shared output layer.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from avalanche_rnf.freezing import EntryFreeze, FreezeState
from avalanche_rnf.keeping import Call, accuracy
from avalanche_rnf.layers import UnitLayer, evaluating, weight_of
from avalanche_rnf.options import TaskInference
from avalanche_rnf.output_layer import check_output_layer, output_columns, output_source
from avalanche_rnf.pooled import JointRecognizer
from avalanche_rnf.recognition import (
    TaskRecognizer,
    horizontal_flip,
    own_class_logits,
    recognised_task_logits,
    resolve_views,
    task_weighted_log_probs,
)
from avalanche_rnf.relevance import Forward
from avalanche_rnf.scenario import recognition_settings
from avalanche_rnf.taps import FeatureTap, recognition_taps

Batch = tuple[Tensor, Tensor, Tensor]


class TaskInferrer:
    """Recognition statistics per task and the output surgery that uses them (``options=None``: off)."""

    def __init__(self, options: TaskInference | None, forward: Forward) -> None:
        self.mode = options.mode if options is not None else None
        settings = options if options is not None else TaskInference()
        self._asked = (settings.layers, settings.shrinkage)
        self.samples = settings.samples
        self.posterior = settings.posterior
        self.own_classes = settings.own_classes
        self._auto_views = settings.views == "auto"
        self.views = [] if self._auto_views else resolve_views(settings.views)
        self.layers: str = "all"
        self.recognizer = TaskRecognizer(power=settings.power)
        self._settle()
        self.forward = forward
        self.task_experiences: list[int] = []
        """Per task: the experience it was learned in."""
        self.entries = EntryFreeze()
        """``"domain"``: the frozen columns and bias of the shared output layer."""
        self.task_inputs: list[Tensor] = []
        """``"domain"``: per task, its own units in the layer feeding the output layer."""
        self.rows: dict[str, Tensor] = {}
        """``"class"``: the output rows of the experience's classes (while it is chosen)."""
        self.training_rows: Tensor | None = None
        """``"class"``: the rows the training loss reads (:func:`~avalanche_rnf.recognition.own_class_logits`)."""
        self.tap: FeatureTap | None = None
        self.predicted: Tensor | None = None  # "domain": the tasks recognised in the forward pass
        self.recognised = [0, 0]
        self._masking: Any = None

    def resolve(self, mode: Any) -> None:
        """``"auto"`` mode: the mode the stream calls for (:mod:`~avalanche_rnf.scenario`), once."""
        if mode == "domain" and (self.posterior is not None or self.views):
            raise ValueError("a task posterior and recognition views need class inference, but this stream "
                             "calls for task_inference='domain'; pass task_inference='class' to force it.")
        self.mode = mode
        self._settle()

    def settle_views(self, mirrored: Callable[[], bool]) -> None:
        """``views="auto"``, at the first experience: the mirror image where training mirrors images
        (``mirrored`` is asked only then, and only in ``"class"`` mode)."""
        if self._auto_views:
            self.views, self._auto_views = [horizontal_flip] if self.mode == "class" and mirrored() else [], False

    def _settle(self) -> None:
        """The recogniser's ``"auto"`` features and shrinkage, once the mode is known."""
        self.layers, shrinkage = recognition_settings(None if self.mode == "auto" else self.mode, *self._asked)
        kind = JointRecognizer if self.layers == "all+input" else TaskRecognizer
        if type(self.recognizer) is not kind:  # settled before the first task is learned
            self.recognizer = kind(power=self.recognizer.power)
        self.recognizer.shrinkage = shrinkage

    # ------------------------------------------------------------------ the output layer
    def class_rows(self, model: nn.Module, layers: list[UnitLayer], experience: Any) -> dict[str, Tensor]:
        """``"class"``: the output layer's rows of the experience's classes."""
        module = check_output_layer(model, layers, False)
        rows = torch.zeros(module.out_features, dtype=torch.bool)
        rows[torch.as_tensor(list(experience.classes_in_this_experience), dtype=torch.long)] = True
        learned = rows & (self.recognizer.task_of_class(module.out_features) >= 0)
        if learned.any():
            raise ValueError(
                f"task_inference='class' gives each experience classes of its own, but experience "
                f"{experience.current_experience} has classes {learned.nonzero().flatten().tolist()} of an earlier "
                "one, whose output rows are frozen: for experiences that share classes use task_inference='domain'."
            )
        return {layers[-1].name: rows}

    def begin(self, model: nn.Module, layers: list[UnitLayer], experience: Any) -> dict[str, Tensor]:
        """An experience begins: check its classes (``"class"``: now, not after training), give the
        frozen output entries their values; returns the entries to hold at zero while it trains."""
        if self.mode == "class":
            rows = next(iter(self.class_rows(model, layers, experience).values()))
            self.training_rows = rows if self.own_classes else None
        self.entries.restore(model)
        return self.domain_cuts(model, layers)

    def domain_cuts(self, model: nn.Module, layers: list[UnitLayer]) -> dict[str, Tensor]:
        """``"domain"``, before a task trains: the output layer's columns from earlier tasks' units."""
        if self.mode != "domain" or not self.task_inputs:
            return {}
        return {f"{layers[-1].name}.weight": output_columns(model, layers, torch.stack(self.task_inputs).any(0))}

    def own_weights(self, model: nn.Module, layers: list[UnitLayer]) -> dict[str, Tensor]:
        """``"domain"``: the output weight reading the latest task's units only (its function)."""
        if self.mode != "domain":
            return {}
        weight = weight_of(model.get_submodule(layers[-1].name))
        return {f"{layers[-1].name}.weight": weight * output_columns(model, layers, self.task_inputs[-1])}

    def kept_accuracy(self, model: nn.Module, layers: list[UnitLayer], held_out: list[Batch], call: Call) -> float:
        """Held-out accuracy of the latest task's kept function, as the recognised task computes it."""
        rows = next(iter(self.rows.values()), None)
        return accuracy(model, self.own_weights(model, layers), held_out, call, rows)

    def freeze_columns(self, model: nn.Module, layers: list[UnitLayer], new: dict[str, Tensor]) -> None:
        """``"domain"``: give the earlier tasks' columns of the shared output layer their values back (they
        were held at zero while this task trained), and freeze this task's columns and the bias."""
        self.entries.restore(model)
        output = layers[-1].name
        module = model.get_submodule(output)
        source = output_source(model, layers).layer
        units = new[source].clone()
        if not units.any():
            warnings.warn(
                f"RNF: task {len(self.task_inputs)} keeps no unit of {source!r}, in front of the shared output "
                "layer: its outputs are the output layer's bias alone. A smaller max_drop keeps more units.",
                stacklevel=4,
            )
        self.entries.freeze(model, f"{output}.weight", output_columns(model, layers, units))
        if isinstance(module.bias, Tensor):
            self.entries.freeze(model, f"{output}.bias", torch.ones_like(module.bias, dtype=torch.bool))
        self.task_inputs.append(units)

    def training_output(self, output: Tensor, labels: Tensor) -> Tensor:
        """The outputs the training loss reads: ``"class"`` mode, the experience's classes only."""
        return output if self.training_rows is None else own_class_logits(output, self.training_rows, labels)

    # ------------------------------------------------------------------ learning a task
    def capture(self, model: nn.Module, layers: list[UnitLayer]) -> FeatureTap:
        """Record the recognition features on every forward pass."""
        return FeatureTap(model, recognition_taps(model, layers, self.layers))

    @torch.no_grad()
    def viewed(self, model: nn.Module, tap: FeatureTap, x: Tensor, t: Tensor) -> Tensor:
        """The features ``tap`` read in the forward pass of ``x``, averaged with those of its views."""
        features = tap.pop()
        for view in self.views:
            self.forward(model, view(x), t)
            features = features + tap.pop()
        return features / (1 + len(self.views))

    def feature_batches(
        self, model: nn.Module, layers: list[UnitLayer], tap: FeatureTap, batches: Iterable[Batch]
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The recognition features (read by ``tap``) and the labels of each of ``batches``, in turn."""
        name = layers[-1].name
        width = model.get_submodule(name).out_features
        with evaluating(model):
            for x, y, t in batches:
                logits = self.forward(model, x, t)
                if logits.shape[-1] != width:
                    raise ValueError(
                        f"task_inference takes {name!r}, the last Linear registered, as the output layer, but it "
                        f"has {width} outputs and the model {logits.shape[-1]}: register the classifier last."
                    )
                yield self.viewed(model, tap, x, t), y

    @torch.no_grad()
    def learn_task(self, model: nn.Module, layers: list[UnitLayer], freeze: FreezeState, experience: int,
                   train: Iterable[Batch], held_out: Callable[[], Iterable[Batch]] | None) -> None:
        """Fit the recogniser's statistics of the finished task on its kept units' features; the
        held-out batches (with a tolerance search) calibrate the task's distance scale, one at a time."""
        with self.capture(model, layers) as tap:
            features, labels = map(torch.cat, zip(*self.feature_batches(model, layers, tap, train)))
            columns = tap.columns(self._kept(tap, freeze))
            calibration = None if held_out is None else (
                f for f, _ in self.feature_batches(model, layers, tap, held_out()))
            if isinstance(self.recognizer, JointRecognizer):  # the input's columns: those no task owns
                self.recognizer.add_task(columns, features, labels, calibration, shared=tap.shared())
            else:
                self.recognizer.add_task(columns, features, labels, calibration)
        self.task_experiences.append(experience)

    def _kept(self, tap: FeatureTap, freeze: FreezeState) -> dict[str, Tensor]:
        """Per tapped source layer, the units the finished task keeps (all of the last hidden layer's
        where it keeps none of them, with a warning)."""
        keep = {t.source: freeze.frozen_units(t.source, t.units) for t in tap.taps if t.source is not None}
        last = next((t.source for t in reversed(tap.taps) if t.source is not None), None)  # feeding the output
        if last is not None and not keep[last].any():
            warnings.warn(
                f"RNF: task {len(self.recognizer)} keeps no unit of {last!r}, in front of the output layer; "
                "its recognition statistics use all of that layer's units, which later tasks change. "
                "A smaller max_drop keeps more units.",
                stacklevel=5,
            )
            keep[last] = torch.ones_like(keep[last])
        return keep

    # ------------------------------------------------------------------ evaluation
    def start_eval(self, model: nn.Module, layers: list[UnitLayer]) -> None:
        """Before an evaluated experience: tap the features (and, ``"domain"``, mask the output)."""
        self.tap = self.capture(model, layers)
        if self.mode == "domain":
            self._masking = self._mask_output(model, layers)

    def after_forward(self, model: nn.Module, output: Tensor, x: Tensor, y: Tensor, t: Tensor,
                      experience: int) -> Tensor:
        """Recognise each input's task, let only its classes win (or weigh each class by its task's
        probability), count the inputs whose task was recognised; returns the outputs to use."""
        assert self.tap is not None
        if self.mode == "domain":  # recognised, and outputs masked, inside the forward pass
            assert self.predicted is not None, "the output layer's hook did not run"
            tasks, self.predicted = self.predicted, None
            true = torch.full_like(tasks, self.task_of_experience(experience))
        else:
            scores = self.recognizer.scores(self.viewed(model, self.tap, x, t))
            tasks = scores.argmax(-1)
            task_of_class = self.recognizer.task_of_class(output.shape[1])
            if self.posterior is None:
                output = recognised_task_logits(output, tasks, self.recognizer.class_mask(output.shape[1]))
            else:
                output = task_weighted_log_probs(output, scores, task_of_class, self.posterior)
            true = task_of_class[y.cpu()]
        known = true >= 0
        self.recognised[0] += int((tasks.cpu() == true)[known].sum())
        self.recognised[1] += int(known.sum())
        return output

    def stop_eval(self) -> None:
        """Remove the tap and the output mask (the recognised counts stay until the next evaluation)."""
        if self.tap is not None:
            self.tap.remove()
            self.tap = None
        if self._masking is not None:
            self._masking.remove()
            self._masking = None
        self.predicted = None

    def _mask_output(self, model: nn.Module, layers: list[UnitLayer]) -> Any:
        """``"domain"``: a forward hook on the output layer that recognises each input's task (the tap
        has read every feature by then) and recomputes the output from that task's own units."""
        module = model.get_submodule(layers[-1].name)
        masks = torch.stack([output_columns(model, layers, units)[0] for units in self.task_inputs])

        def hook(layer: nn.Linear, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            assert self.tap is not None
            tasks = self.recognizer.predict(self.tap.pop()).cpu()
            self.predicted = tasks
            x = inputs[0]
            return nn.functional.linear(x * masks.to(x)[tasks.to(x.device)], layer.weight, layer.bias)

        return module.register_forward_hook(hook)

    def recognition_metrics(self, stream: str, experience: int) -> dict[str, float]:
        """The share of the evaluated experience's inputs whose task was recognised, as a metric."""
        correct, total = self.recognised
        name = f"RNF/TaskRecognition/eval_phase/{stream}/Exp{experience:03d}"
        return {name: correct / total} if total else {}

    def task_of_experience(self, experience: int) -> int:
        """The task learned in ``experience`` (the latest, if it was trained more than once); -1: none."""
        tasks = [i for i, e in enumerate(self.task_experiences) if e == experience]
        return tasks[-1] if tasks else -1

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "recognizer": self.recognizer.state_dict(),
            "task_experiences": list(self.task_experiences),
            "entries": self.entries.state_dict(),
            "task_inputs": [t.clone() for t in self.task_inputs],
            "task_inference": self.mode,
            "mirrored": None if self._auto_views else horizontal_flip in self.views,  # views="auto", once settled
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.mode == "auto" and "task_inference" in state:
            self.mode = state["task_inference"]
            self._settle()
        if state.get("mirrored") is not None:
            self.settle_views(lambda: state["mirrored"])
        self.recognizer.load_state_dict(state.get("recognizer", {"tasks": []}))
        self.task_experiences = list(state.get("task_experiences", []))
        self.entries.load_state_dict(state.get("entries", {"masks": {}, "values": {}}))
        self.task_inputs = [t.clone().bool() for t in state.get("task_inputs", [])]

    def nbytes(self) -> int:
        inputs = sum(t.numel() * t.element_size() for t in self.task_inputs)
        return self.entries.nbytes() + inputs + self.recognizer.nbytes()
