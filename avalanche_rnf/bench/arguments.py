"""``rnf-bench``'s command line: the argument parser, and the parsing of the options that hold lists.

Importing this module imports no Avalanche (the benchmarks, which do, are read when the parser is built),
so that :func:`avalanche_rnf.bench.cli.main` can route Avalanche's import-time warnings to its log.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from avalanche_rnf.bench.data import ENV_VAR
from avalanche_rnf.bench.hparams import MODELS, PRESETS, STRATEGIES, TUNED_FILE

DESCRIPTION = "``rnf-bench``: RNF against Avalanche's baselines on continual-learning streams."
LOGGERS = ("interactive", "text", "csv", "tensorboard")
DEFAULT_LOGGERS = ("text", "csv", "tensorboard")  # interactive floods the console: it is there on request


class UsageError(ValueError):
    """A bad combination of options; reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    from avalanche_rnf.bench.streams import BENCHMARKS, SCENARIOS

    p = argparse.ArgumentParser(
        prog="rnf-bench", description=DESCRIPTION,
        epilog="Example: rnf-bench --benchmark split_mnist --scenario task --seeds 0 1 2 --data-root ~/data",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--benchmark", default="split_digits", choices=list(BENCHMARKS),
                   help="stream: " + "; ".join(f"{b.name}: {b.description}" for b in BENCHMARKS.values()))
    p.add_argument("--scenario", choices=SCENARIOS,
                   help="task (task labels, multi-head model), class (no labels, one head over all classes) "
                        "or domain (no labels, one head shared by all experiences); default: the benchmark's own "
                        "(task for the split benchmarks, domain for permuted_mnist, class for imagefolder)")
    p.add_argument("--strategies",
                   help="comma-separated strategies: " + ", ".join(STRATEGIES)
                        + "; also er_ace, slda (Streaming LDA on the inputs), slda_backbone (on the features of the "
                          "network trained on the first experience), generative_replay (Avalanche's, its VAE "
                          "fitted to the stream's inputs) and si_upstream (Avalanche's SI without the CPU fix) "
                          "(default: all; with --sweep: the sweep's)")
    p.add_argument("--epochs", type=int, help="epochs per experience, for every strategy (default: the table's)")
    p.add_argument("--batch-size", type=int, help="training mini-batch size (default: the table's)")
    p.add_argument("--lr", type=float, help="learning rate, for every strategy (default: the table's)")
    p.add_argument("--width", type=int, help="channels in the small CNN's first block (image benchmarks; the table's: "
                   "32), or with --model slim_resnet18 in its first stage (Avalanche's: 20), for every strategy")
    p.add_argument("--hidden-size", type=int, help="hidden units per layer of the MLP, or of the small CNN's hidden "
                   "Linear layer (default: the table's)")
    p.add_argument("--reset-optimizer", action=argparse.BooleanOptionalAction, default=None,
                   help="clear the optimizer's state (Adam's moments, SGD's momentum) before each experience, "
                        "as Avalanche did before 0.4 (default: kept, as Avalanche 0.6 does; the presets clear it)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds (class order, permutations, initialisation); several give mean ± std")
    p.add_argument("--experiences", type=int, help="number of experiences (default: the benchmark's)")
    p.add_argument("--online", type=int, metavar="SIZE",
                   help="online: each experience is seen once, in sub-experiences of SIZE samples, one pass each "
                        "(Avalanche's split_online_stream; evaluation when an experience ends); sets --epochs 1")
    p.add_argument("--model", choices=MODELS, help="train this model instead of the benchmark's own (RGB image "
                   "benchmarks: slim_resnet18, Avalanche's SlimResNet18), for every strategy")
    p.add_argument("--image-size", type=int, default=32, help="imagefolder: images are resized to this square size")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                   help="override a strategy parameter, e.g. ewc.ewc_lambda=10 (repeatable)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="reproduce a published continual-learning-baselines result with its configuration "
                        "(with --strategies: run those strategies in the preset's setting; the preset's "
                        "parameters go to its own strategy)")
    p.add_argument("--search", action="store_true",
                   help="search each strategy's key parameter on a validation split (10%% of the training data; "
                        "the test stream is not used) and report the best value")
    p.add_argument("--sweep", metavar="CONFIG",
                   help="hyperparameter sweep on Ray Tune, scored on the validation split like --search: 'default' "
                        "(the --search grids) or a JSON file of grids and distributions per strategy "
                        "(see docs/benchmarks.md); prints the best configuration per strategy")
    p.add_argument("--write-tuned", nargs="?", const=str(TUNED_FILE), metavar="FILE",
                   help="with --sweep: write each strategy's best values into the hyperparameter table "
                        f"(default file: {TUNED_FILE.name} in the benchmarks package)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each run as a Ray task: on this machine's cores (no ADDRESS) or on the cluster at "
                        "ADDRESS ('auto' when this node joined one with `ray start`, or ray://HEAD:10001); "
                        "results land in the same files; the interactive logger is left out")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="with --ray/--sweep: CPUs each run asks for")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="with --ray/--sweep: GPUs each run asks for (fractions share a GPU); > 0 runs on CUDA")
    p.add_argument("--retries", type=int, default=0,
                   help="with --ray/--sweep: how often Ray restarts a run whose worker died before it is "
                        "reported failed (--resume reruns failed runs)")
    p.add_argument("--data-root", help=f"directory holding the datasets (default: ${ENV_VAR})")
    p.add_argument("--out", help="run directory (default: runs/<benchmark>-<scenario>)")
    p.add_argument("--resume", action="store_true", help="keep finished runs found in the run directory, run the rest")
    p.add_argument("--rerun", default="", metavar="STRATEGIES",
                   help="with --resume: discard the stored runs of these comma-separated strategies first, so "
                        "they run again (after their code changed; otherwise a run with the same configuration "
                        "counts as finished); with --search/--sweep only the points this invocation runs, "
                        "so other sweeps' points in the directory stay")
    p.add_argument("--wandb", metavar="PROJECT",
                   help="log to Weights & Biases project PROJECT (online when logged in, offline otherwise)")
    p.add_argument("--loggers", default=",".join(DEFAULT_LOGGERS),
                   help="comma-separated Avalanche loggers: interactive (Avalanche's progress bars and metrics "
                        "on the console), text (the same into log.txt), csv, tensorboard; files go to "
                        "<out>/logs/<run>/")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    p.add_argument("--infer-tasks", action="store_true",
                   help="task-incremental streams: train with task labels, but evaluate with the task label a "
                        "recogniser infers from each input (per task, the class means of a sample of its inputs, "
                        "as RNF's domain-incremental task inference keeps them): peers for RNF's task inference")
    p.add_argument("--explain", action="store_true",
                   help="explanation drift: LRP heatmaps of a seeded probe set of every experience after each "
                        "later one, for every strategy (extra backward passes, timed apart from training); "
                        "heatmaps in <out>/explanations/, a drift table in summary.md, figures in plots/")
    return p


def names(text: str | None) -> list[str]:
    """The names in a comma-separated option (``--strategies``, ``--rerun``, ``--loggers``)."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--param STRATEGY.KEY=VALUE`` items as ``{strategy: {key: value}}``; a value is JSON where it parses."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        try:
            target, value = item.split("=", 1)
            strategy, key = target.split(".", 1)
        except ValueError:
            raise ValueError(f"--param {item!r}: expected STRATEGY.KEY=VALUE, e.g. ewc.ewc_lambda=10") from None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(strategy, {})[key] = parsed
    return out
