"""Compare ways to recognise the task of a class-incremental test input, on one trained RNF model.

RNF with ``task_inference="class"`` trains once on the stream. Every recogniser below then scores
the same test inputs, from one of three feature sets: what each task's kept units feed into the
output layer (``TaskInference(layers="last")``), or into every layer after the first (``"all"``,
conv channels as mean and spread over positions), or the model's input, which every task shares
(``"input"``; there also a linear discriminant analysis whose covariance is pooled over every
task, :class:`~avalanche_rnf.pooled.PooledRecognizer`). With isolation, task ``k``'s kept units
compute exactly what they computed when task ``k`` ended, so statistics fitted on each task's
training samples with the final model equal those the plugin fits after the task. Reported: the
share of test inputs whose task is recognised and the class-incremental accuracy when only the
recognised task's classes may win (rows marked "task posterior": each class weighed by its
task's probability instead, ``TaskInference(posterior=...)``). The last rows fit the plugin's
own recogniser (its shrinkage and power) on :data:`SAMPLES` per task, as the rows above, and on
every training sample, and for images also on each input's features averaged with its mirror
image's (``TaskInference(views=["hflip"])``), and on the units each task froze itself only (not
also the earlier tasks' units it reads; a smaller recogniser). The rows marked ``all+input`` add
the per-task scores from every layer, times a weight, to the pooled LDA's task log-posterior on the
input's values (``TaskInference(layers="all+input")``, whose weight is
:data:`~avalanche_rnf.pooled.WEIGHT`). With ``--validation F``, the model trains on ``1 - F`` of each
experience's training data and everything is scored on the held-out rest, not on the test stream
(how the recognition options are chosen); ``--input-values N`` pools images further for the
pooled LDA (a smaller recogniser).

    python -m avalanche_rnf.bench.recognizers --benchmark split_mnist --seed 0 \
        --out benchmarks/results/recognizers-split_mnist
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from avalanche_rnf import pooled
from avalanche_rnf.bench.recognizer_candidates import accuracy_of, fit_candidates
from avalanche_rnf.bench.results import atomic_write
from avalanche_rnf.layers import evaluating
from avalanche_rnf.options import TaskInference
from avalanche_rnf.pooled import JointRecognizer
from avalanche_rnf.recognition import TaskRecognizer, View, horizontal_flip
from avalanche_rnf.reference import balanced_indices

LAYERS = ("last", "all", "input")
#: Recognisers also scored with each class weighed by its task's probability, at this scale.
POSTERIOR = ("Mahalanobis, shrinkage 0.01, standardised per task",
             "Mahalanobis, shrinkage 0.01, standardised per task, features ** 0.5",
             "LDA, covariance pooled over tasks, shrinkage 0.01")
POSTERIOR_SCALE = 1.0
#: Weights of the per-task scores against the pooled LDA's task log-posterior compared (``"all+input"``).
WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)
#: Training samples per task the recognisers are fitted on: the plugin's default ``recognition_samples``.
SAMPLES: int | None = TaskInference.samples


def train_rnf(benchmark: str, seed: int, validation: float = 0.0):
    """RNF with task inference trained on the class-incremental stream, as ``rnf-bench`` trains it
    (with ``validation``, on the rest of a held-out split); also the units kept after each experience."""
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_rnf.bench.hparams import TRAINING, strategy_params
    from avalanche_rnf.bench.models import model_for
    from avalanche_rnf.bench.strategies import build_strategy
    from avalanche_rnf.bench.streams import build_stream, with_validation

    stream = build_stream(benchmark, "class", seed=seed)
    if validation:
        stream = with_validation(stream, validation, seed)
    RNGManager.set_random_seeds(seed)  # as avalanche_rnf.bench.runner: the same model as rnf-bench's run with this seed
    t = TRAINING[benchmark]
    model = model_for(stream, t, multi_head=False)
    strategy = build_strategy("rnf", model, t, strategy_params("rnf", benchmark, "class"),
                              evaluator=EvaluationPlugin(loggers=[]), device="cpu", seed=seed)
    kept = []
    for experience in stream.benchmark.train_stream:
        strategy.train(experience)
        kept.append({name: mask.clone() for name, mask in strategy.rnf.freeze.unit_masks.items()})
    return stream, strategy, kept


@torch.no_grad()
def features(strategy, datasets, layers: str, size: int | None = None, view: View | None = None):
    """Per dataset: the recognition features read from ``layers``, the logits and the labels
    (``size`` class-balanced samples; of each input's ``view`` if given); and the tap that read them."""
    plugin, model = strategy.rnf, strategy.model
    plugin.inference.layers = layers
    out = []
    with plugin.inference.capture(model, plugin.layers) as tap, evaluating(model):
        for dataset in datasets:
            dataset = dataset.eval()
            if size is not None:
                generator = torch.Generator().manual_seed(0)
                dataset = dataset.subset(balanced_indices(torch.as_tensor(list(dataset.targets)), size, generator))
            f, logits, labels = [], [], []
            for x, y, _ in DataLoader(dataset, batch_size=512, collate_fn=dataset.collate_fn):
                logits.append(model(view(x) if view is not None else x))
                f.append(tap.pop())
                labels.append(y)
            out.append((torch.cat(f), torch.cat(logits), torch.cat(labels)))
    return out, tap


def compare(strategy, stream, kept: list[dict[str, Tensor]]) -> dict[str, dict[str, float]]:
    """Task-recognition share and class-incremental accuracy of each recogniser on the test stream."""
    recognizer = strategy.rnf.recognizer
    classes = [task.classes for task in recognizer.tasks]
    size = SAMPLES
    results = {}
    for layers in LAYERS:
        train, tap = features(strategy, [e.dataset for e in stream.benchmark.train_stream], layers, size)
        test, _ = features(strategy, [e.dataset for e in stream.benchmark.test_stream], layers)
        columns = _kept_columns(tap, kept)
        test_f, test_logits, test_y = (torch.cat(parts) for parts in zip(*test))
        candidates = fit_candidates(columns, classes, train, test_logits, with_logits=layers == LAYERS[0],
                                    pooled=layers == "input")
        for name, score in candidates.items():
            scores = score(test_f)
            results[f"{name} | {layers}"] = accuracy_of(scores, test_logits, test_y, recognizer)
            if name in POSTERIOR:
                results[f"{name}, task posterior {POSTERIOR_SCALE} | {layers}"] = accuracy_of(
                    scores, test_logits, test_y, recognizer, POSTERIOR_SCALE)
    results.update(_more_data(strategy, stream, kept, test_logits, test_y))
    results.update(_joint(strategy, stream, kept, test_logits, test_y))
    return results


def _joint(strategy, stream, kept: list[dict[str, Tensor]], test_logits: Tensor, test_y: Tensor):
    """Every layer's per-task scores times each of :data:`WEIGHTS`, plus the task log-posterior of
    the LDA pooled over every task on the input's values (``TaskInference(layers="all+input")``
    weighs them by :data:`~avalanche_rnf.pooled.WEIGHT`); also with the per-task part on each task's
    own units only, and the recogniser's size in KiB."""
    train, tap = features(strategy, [e.dataset for e in stream.benchmark.train_stream], "all+input", SAMPLES)
    test, _ = features(strategy, [e.dataset for e in stream.benchmark.test_stream], "all+input")
    test_f = torch.cat([f for f, _, _ in test])
    results, columns, shared = {}, _kept_columns(tap, kept), tap.shared()
    for units, task_columns in (("", columns), (", each task's own units only", _own_columns(tap, kept, columns))):
        joint = JointRecognizer()
        for cols, (fit, _, y) in zip(task_columns, train):
            joint.add_task(cols, fit, y, shared=shared)
        per_task = TaskRecognizer.scores(joint, test_f)  # its per-task part alone, unweighted
        pooled_scores = joint.pooled.scores(test_f).log_softmax(1)
        results.update({f"per-task scores{units} x {weight} + pooled LDA task log-posterior | all+input": {
            **accuracy_of(weight * per_task + pooled_scores, test_logits, test_y, joint), "kib": joint.nbytes() / 1024}
            for weight in WEIGHTS})
    return results


def _more_data(strategy, stream, kept: list[dict[str, Tensor]], test_logits: Tensor, test_y: Tensor):
    """The plugin's recogniser (its shrinkage and power, ``"all"`` layers) fitted on :data:`SAMPLES`
    and on every training sample (``TaskInference(samples=None)``); for images
    also on each input's features averaged with its mirror image's (``TaskInference(views=["hflip"])``);
    and on :data:`SAMPLES` from only the units each task froze itself, not also those of earlier tasks
    that it reads: fewer features per task, a smaller recogniser. These rows give its size in KiB."""
    recognizer = strategy.rnf.recognizer
    train_sets = [e.dataset for e in stream.benchmark.train_stream]
    test_sets = [e.dataset for e in stream.benchmark.test_stream]
    views: dict[str, View | None] = {"": None}
    if test_sets[0][0][0].dim() == 3:  # images, [C, H, W]
        views[", averaged with the mirror image"] = horizontal_flip
    sizes: dict[str, int | None] = {f"{SAMPLES} samples": SAMPLES, "all training samples": None}
    name = f"Mahalanobis, shrinkage {recognizer.shrinkage}, standardised per task, features ** {recognizer.power}"
    test = {view: features(strategy, test_sets, "all", None, view) for view in views.values()}
    tap = test[None][1]
    columns = _kept_columns(tap, kept)
    train = {(size, view): features(strategy, train_sets, "all", size, view)[0]
             for size in sizes.values() for view in views.values()}
    fits = [(fitted_on, size, columns) for fitted_on, size in sizes.items()]
    fits.append((f"{SAMPLES} samples, each task's own units only", SAMPLES, _own_columns(tap, kept, columns)))
    results = {}
    for label, view in views.items():
        test_f = torch.cat([f for f, _ in _mean(test[None][0], test[view][0])])
        for fitted_on, size, task_columns in fits:
            fitted = TaskRecognizer(recognizer.shrinkage, recognizer.power)
            for cols, (fit, y) in zip(task_columns, _mean(train[size, None], train[size, view])):
                fitted.add_task(cols, fit, y)
            for posterior in (None, POSTERIOR_SCALE):
                suffix = "" if posterior is None else f", task posterior {posterior}"
                results[f"{name}, {fitted_on}{label}{suffix} | all"] = {**accuracy_of(
                    fitted.scores(test_f), test_logits, test_y, recognizer, posterior), "kib": fitted.nbytes() / 1024}
    return results


def _kept_columns(tap, kept: list[dict[str, Tensor]]) -> list[Tensor]:
    """Per task: the feature columns ``tap`` read from the units it kept (all of a tap of the input)."""
    return [tap.columns({t.source: masks[t.source] for t in tap.taps if t.source is not None}) for masks in kept]


def _own_columns(tap, kept: list[dict[str, Tensor]], kept_columns: list[Tensor]) -> list[Tensor]:
    """Per task: the feature columns of the units it kept that no earlier task had kept (and of the
    input), or its ``kept_columns`` (:func:`_kept_columns`) where its own units provide none."""
    shared, out = tap.shared(), []
    for before, masks, all_kept in zip([{}] + kept, kept, kept_columns):
        own = _kept_columns(tap, [{n: m & ~before[n] if n in before else m for n, m in masks.items()}])[0]
        out.append(own if (~torch.isin(own, shared)).any() else all_kept)
    return out


def _mean(plain: list, viewed: list) -> list[tuple[Tensor, Tensor]]:
    """Per dataset: the features of the inputs averaged with those of their view (``viewed``, from
    :func:`features`; the inputs' own if it is ``plain``), and the labels."""
    if viewed is plain:
        return [(f, y) for f, _, y in plain]
    return [((f + g) / 2, y) for (f, _, y), (g, _, _) in zip(plain, viewed)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="split_mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", type=float, default=0.0, metavar="F",
                        help="train on 1 - F of each experience and score on the held-out F, not the test stream")
    parser.add_argument("--input-values", type=int, default=pooled.INPUT_VALUES, metavar="N",
                        help="images reach the pooled LDA average-pooled to at most N values (all+input rows)")
    parser.add_argument("--out", required=True, help="directory for result.json and result.md")
    args = parser.parse_args(argv)
    from avalanche_rnf.bench.machine import machine_facts

    pooled.INPUT_VALUES, default = args.input_values, pooled.INPUT_VALUES
    try:
        stream, strategy, kept = train_rnf(args.benchmark, args.seed, args.validation)
        results = compare(strategy, stream, kept)
    finally:
        pooled.INPUT_VALUES = default
    command = "python -m avalanche_rnf.bench.recognizers " + shlex.join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = {"command": command, "benchmark": args.benchmark, "seed": args.seed, "validation": args.validation,
             "input_values": args.input_values, "results": results, "machine": machine_facts("cpu")}
    atomic_write(out / "result.json", json.dumps(saved, indent=1))
    scored = f"validation split, {args.validation:.0%} of the training data" if args.validation else "test stream"
    lines = [f"# Task recognisers on {args.benchmark} (class-incremental, seed {args.seed}, {scored})", "",
             f"`{command}`", "",
             f"Statistics from up to {SAMPLES} class-balanced training samples per task; in the pooled LDA "
             f"of the all+input rows, each input's values average-pooled to at most {args.input_values}.", "",
             "| recogniser | features (`recognition_layers`) | task recognised | class-incremental accuracy | KiB |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['task_recognised']:.3f} | {v['class_incremental_accuracy']:.3f} | "
              + (f"{v['kib']:.0f} |" if "kib" in v else "– |") for k, v in results.items()]
    atomic_write(out / "result.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
