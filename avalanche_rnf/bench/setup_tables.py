"""The setup tables of the documentation: the hyperparameter table, each preset's published result next
to the measured one, and Ray's scaling measurements."""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.hparams import PRESETS, SEARCH, STRATEGIES, STRATEGY_DEFAULTS, TRAINING, TUNED
from avalanche_rnf.bench.result_tables import RESULTS
from avalanche_rnf.bench.results import load_records, mean_std, present
from avalanche_rnf.bench.streams import BENCHMARKS


def presets_table(results: Path = RESULTS) -> str:
    """Each preset's published result next to what the harness measured."""
    lines = ["| preset | strategy on benchmark (scenario) | model, parameters | published | measured (own head) "
             "| Avalanche-reported | epochs run / published | optimizer state between experiences | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, preset in PRESETS.items():
        folder = results / f"preset-{name}"
        setup = _preset_setup(preset.training.as_dict(), preset.params)
        if not (folder / "results.json").is_file():
            lines.append(f"| {name} | {preset.strategy} on {preset.benchmark} ({preset.scenario}) | {setup} | "
                         f"{preset.expected:.2f} | not run yet (CPU time: `benchmarks/reproduce.sh` has the command) "
                         f"| | – / {preset.training.epochs} | | |")
            continue
        records = [r for r in load_records(folder)[1] if r.status == "ok" and r.strategy == preset.strategy]
        ran = {_preset_setup(r.config["training"], r.config["params"]) for r in records}
        if ran != {setup}:
            setup = " / ".join(sorted(ran)) + " (not the preset's current setting)"
        epochs = records[0].config["training"]["epochs"] if records else "?"
        state = _optimizer_state(records[0].config["training"]) if records else "?"
        acc = mean_std(present(r.average_accuracy for r in records))
        reported = mean_std(present(r.stream_accuracy_avalanche for r in records))
        lines.append(f"| [{name}]({preset.source}) | {preset.strategy} on {preset.benchmark} ({preset.scenario}) | "
                     f"{setup} | {preset.expected:.2f} | {acc} | {reported} | {epochs} / {preset.training.epochs} | "
                     f"{state} | {len(records)} |")
    return "\n".join(lines)


def _preset_setup(training: dict, params: dict) -> str:
    """The model and strategy parameters of a preset or of a run, as one table cell."""
    model = (f"MLP {training['hidden_layers']} x {training['hidden_size']} {training.get('activation', 'relu')}, "
             f"{training['optimizer']} lr {training['lr']}, batch {training['batch_size']}")
    return model + "; " + ", ".join(f"{k}={v}" for k, v in params.items())


def _optimizer_state(training: dict) -> str:
    if training["optimizer"] == "sgd" and not training["momentum"]:
        return "none (SGD without momentum)"
    return "cleared" if training.get("reset_optimizer") else "kept"


def hparams_table() -> str:
    """The hyperparameter table: shared training setup per benchmark, then each strategy's parameters."""
    lines = ["| benchmark | epochs | batch | optimizer | lr | model |", "|---|---|---|---|---|---|"]
    for name, t in TRAINING.items():
        model = (f"SmallCNN(width {t.width}, hidden {t.hidden_size})" if BENCHMARKS[name].family == "image"
                 else f"SimpleMLP({t.hidden_layers} x {t.hidden_size})")
        opt = f"SGD, momentum {t.momentum}" if t.optimizer == "sgd" else "Adam"
        lines.append(f"| {name} | {t.epochs} | {t.batch_size} | {opt} | {t.lr} | {model} |")
    lines += ["", "| strategy | defaults | searched (`--search`, `--sweep default`) | tuned values (`tuned.json`) |",
              "|---|---|---|---|"]
    for strategy in STRATEGIES:
        defaults = ", ".join(f"{k}={v}" for k, v in STRATEGY_DEFAULTS[strategy].items()) or "–"
        key, values = SEARCH.get(strategy, ("", ()))
        searched = f"{key} in {{{', '.join(str(v) for v in values)}}}" if key else "–"
        tuned = "; ".join(f"{b}-{s}: " + ", ".join(f"{k}={v}" for k, v in p[strategy].items())
                          for (b, s), p in TUNED.items() if strategy in p) or "–"
        lines.append(f"| {strategy} | {defaults} | {searched} | {tuned} |")
    return "\n".join(lines)


def scaling_table(results: Path = RESULTS) -> str:
    """Ray's speed-up and per-run overhead, one column per ``results/ray-scaling-*/result.json``."""
    dirs = [d for d in sorted(results.glob("ray-scaling-*")) if (d / "result.json").is_file()]
    found = [json.loads((d / "result.json").read_text()) for d in dirs]
    if not found:
        return ("not measured yet: `python -m avalanche_rnf.bench.scaling "
                "--out benchmarks/results/ray-scaling-split_digits`")
    rows = [
        ("grid", lambda r: f"`{r['grid']}`: {r['runs']} runs"),
        ("sequential (`rnf-bench ...`; torch's default threads), whole command",
         lambda r: f"{r['sequential_seconds']:.1f} s"),
        ("sequential with one thread (`OMP_NUM_THREADS=1 rnf-bench ...`)",
         lambda r: f"{r['sequential_one_thread_seconds']:.1f} s"),
        ("on Ray (`rnf-bench ... --ray`; one thread per run), whole command",
         lambda r: f"{r['ray_seconds']:.1f} s, {r['workers']} workers"),
        ("**speed-up** over the sequential run", lambda r: f"**{r['speedup']:.2f}x**"),
        ("speed-up over the one-thread sequential run", lambda r: f"{r['speedup_over_one_thread']:.2f}x"),
        ("same accuracy matrices in all three", lambda r: "yes" if r["identical_results"] else "NO"),
        ("`ray.init` (local)", lambda r: f"{r['ray_init_seconds']:.1f} s"),
        ("first run's overhead (a worker starts: Python, torch, Avalanche imports)",
         lambda r: f"{r['first_run_overhead_seconds']:.1f} s"),
        ("**per-run overhead**, warm worker: median (max)",
         lambda r: f"**{r['per_run_overhead_seconds_median'] * 1000:.0f} ms** "
                   f"({r['per_run_overhead_seconds_max'] * 1000:.0f} ms) over {r['overhead_runs'] - 1} runs"),
        ("command", lambda r: f"`{_current_command(r['command'])}`"),
    ]
    lines = ["| measured | " + " | ".join(d.name.removeprefix("ray-scaling-") for d in dirs) + " |",
             "|---" * (len(found) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(get(r) for r in found) + " |" for name, get in rows]
    machine = found[0]["machine"]
    lines += ["", f"On {machine.get('cpu', machine.get('processor'))} ({machine['cpu_count']} cores, no GPU), "
                  f"{machine['date'][:10]}; machine facts in each `result.json`."]
    return "\n".join(lines)


def _current_command(command: str) -> str:
    """A recorded command under the harness's current module name (it moved from ``benchmarks`` to
    ``avalanche_rnf.bench``; the options are the same)."""
    return command.replace("python -m benchmarks.", "python -m avalanche_rnf.bench.")


