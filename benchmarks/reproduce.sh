#!/usr/bin/env bash
# The commands behind every committed result under benchmarks/results/ (2-core CPU, see each results.json's meta).
# Usage: RNF_DATA_ROOT=/writable/datasets benchmarks/reproduce.sh   (add --resume to continue an interrupted sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
extra=("$@")

# Hyperparameter searches (validation split, 1 seed); the chosen values are in avalanche_rnf/bench/hparams.py TUNED.
for bs in "split_mnist task" "split_mnist class" "split_fmnist task"; do
  set -- $bs
  rnf-bench --search --benchmark "$1" --scenario "$2" --loggers text --out "$R/search-$1-$2" "${extra[@]}"
done

# The comparison: 3 seeds on the MNIST family; 2 seeds on PermutedMNIST (about 13 min per seed here) and
# SplitCIFAR-10 (about 20 min per seed) to fit the 2-core CPU budget.
rnf-bench --benchmark split_mnist --scenario task --seeds 0 1 2 --loggers text --out "$R/split_mnist-task" \
  --strategies naive,ewc,si,si_upstream,lwf,mas,packnet,replay,joint,rnf "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --seeds 3 4 --loggers text --out "$R/split_mnist-task" \
  --strategies naive,ewc,si,si_upstream,lwf,mas,packnet,replay,joint,rnf --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --seeds 0 1 2 --loggers text --out "$R/split_mnist-class" "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario task --seeds 0 1 2 --loggers text --out "$R/split_fmnist-task" "${extra[@]}"
rnf-bench --benchmark permuted_mnist --scenario domain --seeds 0 1 --loggers text --out "$R/permuted_mnist-domain" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --seeds 0 --loggers text --out "$R/split_cifar10-task" "${extra[@]}"

# RNF's own searches over max_drop, on Ray Tune, writing the chosen values into avalanche_rnf/bench/tuned.json.
for bs in "split_mnist task" "split_mnist class" "split_fmnist task"; do
  set -- $bs
  rnf-bench --sweep default --strategies rnf --benchmark "$1" --scenario "$2" --loggers text \
    --out "$R/search-$1-$2" --resume --rerun rnf --write-tuned "${extra[@]}"
done

# RNF with the max_drop search, isolation and the fair-share budget: its runs redone in the directories above
# with `--strategies rnf --resume --rerun rnf` appended to each of the five comparison commands; then the cost
# comparison, Naive, EWC and RNF side by side in one run (redone with `--resume --rerun naive,ewc,rnf`).
rnf-bench --benchmark split_mnist --scenario task --strategies naive,ewc,rnf --seeds 0 1 2 --loggers text \
  --out "$R/cost-split_mnist-task" "${extra[@]}"
# ... redone after split_mnist-task's retrain_epochs sweep changed RNF's values, with the CPU to itself:
rnf-bench --benchmark split_mnist --scenario task --strategies naive,ewc,rnf --seeds 0 1 2 --loggers text \
  --out "$R/cost-split_mnist-task" --resume --rerun naive,ewc,rnf "${extra[@]}"

# Class-incremental RNF with task inference: RNF redone in split_mnist-class, two new directories.
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_mnist-class" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario class --strategies naive,ewc,si,lwf,mas,replay,joint,rnf \
  --seeds 0 1 2 --loggers text --out "$R/split_fmnist-class" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies naive,lwf,replay,rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-class" "${extra[@]}"

python -m avalanche_rnf.bench.recognizers --benchmark split_mnist --seed 0 --out "$R/recognizers-split_mnist"

# Retraining the kept sub-network (retrain_epochs): RNF's sweep over max_drop x retrain_epochs on the three
# search benchmarks and on SplitCIFAR-10 (task and class), writing tuned.json; the baselines' search on
# SplitCIFAR-10 task (on Ray); then RNF (and on CIFAR task, every strategy with 3 seeds) redone.
for bs in "split_mnist task" "split_mnist class" "split_fmnist task" "split_cifar10 task" "split_cifar10 class"; do
  set -- $bs
  rnf-bench --sweep benchmarks/sweeps/rnf-retrain.json --strategies rnf --benchmark "$1" --scenario "$2" \
    --loggers text --out "$R/search-$1-$2" --resume --rerun rnf --write-tuned "${extra[@]}"
done
rnf-bench --sweep default --strategies ewc,si,lwf,mas --benchmark split_cifar10 --scenario task --loggers text \
  --out "$R/search-split_cifar10-task" --resume --write-tuned "${extra[@]}"
# (every strategy on seed 0 after the baselines' new values, then RNF, LwF and EWC on 3 seeds: CPU time)
rnf-bench --benchmark split_cifar10 --scenario task --seeds 0 --loggers text --out "$R/split_cifar10-task" \
  --ray --resume --rerun naive,ewc,si,lwf,mas,packnet,replay,joint,rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --strategies rnf,lwf,ewc --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-task" --ray --resume "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-class" --ray --resume --rerun rnf "${extra[@]}"
for bs in "split_mnist task" "split_mnist class" "split_fmnist task"; do
  set -- $bs
  rnf-bench --benchmark "$1" --scenario "$2" --strategies rnf --seeds 0 1 2 --loggers text --out "$R/$1-$2" \
    --resume --rerun rnf "${extra[@]}"
done

# PermutedMNIST searched (baselines and RNF, on Ray).
rnf-bench --sweep benchmarks/sweeps/permuted_mnist.json --strategies ewc,si,lwf,mas,rnf --benchmark permuted_mnist \
  --scenario domain --loggers text --out "$R/search-permuted_mnist-domain" --write-tuned "${extra[@]}"
# Task recognition from every layer (recognition_layers="all"): the recognisers compared, RNF's class-IL sweep on
# split_mnist redone, then RNF redone in the three class-incremental directories.
python -m avalanche_rnf.bench.recognizers --benchmark split_mnist --seed 0 --out "$R/recognizers-split_mnist"
python -m avalanche_rnf.bench.recognizers --benchmark split_cifar10 --seed 0 --out "$R/recognizers-split_cifar10"
rnf-bench --sweep benchmarks/sweeps/rnf-retrain.json --strategies rnf --benchmark split_mnist --scenario class \
  --loggers text --out "$R/search-split_mnist-class" --resume --rerun rnf --write-tuned "${extra[@]}"
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --benchmark "$b" --scenario class --strategies rnf --seeds 0 1 2 --loggers text --out "$R/$b-class" \
    --resume --rerun rnf "${extra[@]}"
done
# PermutedMNIST with the searched baseline values and RNF with task_inference="domain", 3 seeds.
rnf-bench --benchmark permuted_mnist --scenario domain --seeds 0 1 2 --loggers text --out "$R/permuted_mnist-domain" \
  --ray --resume --rerun ewc,si,lwf,mas,rnf "${extra[@]}"
# Recognition options on validation splits (recognition_power, task_posterior), then
# RNF on split_cifar10 class with the chosen ones.
for b in split_cifar10 split_mnist split_fmnist; do
  python -m avalanche_rnf.bench.recognizers --benchmark "$b" --seed 0 --validation 0.1 --out "$R/recognizers-$b-validation"
done
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --param rnf.recognition_power=0.5 \
  --param rnf.task_posterior=1.0 --loggers text --out "$R/split_cifar10-class" --resume --rerun rnf "${extra[@]}"
# SplitMNIST task-IL: RNF's capacity x max_drop x retraining on a 2-seed validation sweep, then RNF rerun.
rnf-bench --sweep benchmarks/sweeps/rnf-task.json --strategies rnf --benchmark split_mnist --scenario task --seeds 0 1 \
  --cpus-per-run 2 --loggers text --out "$R/search-split_mnist-task" --resume --write-tuned "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_mnist-task" --resume --rerun rnf "${extra[@]}"
# split_cifar10-task: the other baselines on seeds 1 and 2 too (seed 0 is kept by --resume), on Ray.
rnf-bench --benchmark split_cifar10 --scenario task --strategies naive,si,mas,replay,joint --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-task" --ray --resume "${extra[@]}"
# split_cifar10-class: recognition fitted on all training samples, features averaged with the mirror image
# (chosen on validation splits of seeds 0 and 1), then RNF rerun with them.
for seed in 0 1; do
  python -m avalanche_rnf.bench.recognizers --benchmark split_cifar10 --seed "$seed" --validation 0.1 \
    --out "$R/recognizers-split_cifar10-validation$([ "$seed" = 0 ] || echo "-seed$seed")"
done
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-class" --resume --rerun rnf "${extra[@]}"
# permuted_mnist domain: RNF's max_drop x retrain_epochs x keep_last on a 2-seed validation sweep, RNF rerun
# with the chosen values; what a fresh network of each width learns of the last permutation in one epoch.
rnf-bench --sweep benchmarks/sweeps/rnf-domain.json --strategies rnf --benchmark permuted_mnist --scenario domain \
  --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-permuted_mnist-domain-retrain" --resume --write-tuned \
  "${extra[@]}"
rnf-bench --benchmark permuted_mnist --scenario domain --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/permuted_mnist-domain" --resume --rerun rnf "${extra[@]}"
python -m avalanche_rnf.bench.capacity --benchmark permuted_mnist --widths 26 52 128 256 --seeds 0 1 2 \
  --out "$R/capacity-permuted_mnist"
python -m avalanche_rnf.bench.capacity --benchmark split_mnist --widths 51 90 256 --seeds 0 1 2 --out "$R/capacity-split_mnist"
# permuted_mnist task: does reading the earlier tasks' frozen units help the last task? (RNF at the domain values)
rnf-bench --benchmark permuted_mnist --scenario task --strategies naive,rnf --seeds 0 1 2 --param rnf.max_drop=0.002 \
  --param rnf.retrain_epochs=0.9 --param rnf.capacity=fair --param rnf.keep_last=true --loggers text \
  --out "$R/permuted_mnist-task" "${extra[@]}"
# split_mnist task: RNF's holdout x keep_last on a 2-seed validation sweep, then RNF rerun with the choice.
rnf-bench --sweep benchmarks/sweeps/rnf-task-holdout.json --strategies rnf --benchmark split_mnist --scenario task \
  --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-split_mnist-task" --resume --write-tuned "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_mnist-task" --resume --rerun rnf "${extra[@]}"
# ... then retrain_epochs (0, 0.5, 1, 1.5) at the chosen values, and RNF rerun with the choice.
rnf-bench --sweep benchmarks/sweeps/rnf-task-retrain.json --strategies rnf --benchmark split_mnist --scenario task \
  --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-split_mnist-task" --resume --write-tuned "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_mnist-task" --resume --rerun rnf "${extra[@]}"

# Published continual-learning-baselines results. The presets clear the optimizer's state before each
# experience, as the Avalanche they were made with did (SGD without momentum keeps no state).
# The current scripts (run into a temporary directory and copied here):
rnf-bench --preset si-pmnist --loggers text --out "$R/preset-si-pmnist" "${extra[@]}"
rnf-bench --preset ewc-pmnist --loggers text --out "$R/preset-ewc-pmnist" "${extra[@]}"
rnf-bench --preset si-smnist --seeds 0 1 2 --loggers text --out "$R/preset-si-smnist" "${extra[@]}"
rnf-bench --preset lwf-smnist --seeds 0 1 2 --loggers text --out "$R/preset-lwf-smnist" "${extra[@]}"
# The older PermutedMNIST scripts (commit 2f05f40). These ran as --preset si-pmnist / ewc-pmnist before
# the presets were moved to the current scripts; the -2f05f40 presets hold the same configurations.
# Adam's state kept or cleared, Naive and SI in that si-pmnist setting on 3 permutations for 3 epochs:
for s in cleared kept; do
  flag=$([ $s = cleared ] && echo --reset-optimizer || echo --no-reset-optimizer)
  rnf-bench --preset si-pmnist-2f05f40 --strategies naive,si --experiences 3 --epochs 3 $flag --loggers text \
    --out "$R/optimizer-state-pmnist-$s" "${extra[@]}"
done
# SI with eps=1e-7 (an early Avalanche SI ignored eps and used 1e-7), same short setting, state cleared.
rnf-bench --preset si-pmnist-2f05f40 --experiences 3 --epochs 3 --param si.eps=1e-7 --loggers text \
  --out "$R/si-eps-pmnist" "${extra[@]}"
# ... and over all ten permutations at 3 epochs, eps=1e-7 and the published eps=0.1.
rnf-bench --preset si-pmnist-2f05f40 --epochs 3 --param si.eps=1e-7 --loggers text \
  --out "$R/si-eps-pmnist-3epochs" "${extra[@]}"
rnf-bench --preset si-pmnist-2f05f40 --epochs 3 --loggers text --out "$R/si-pmnist-3epochs" "${extra[@]}"
# ewc at 30 epochs (about 2 h here, sharing the CPU) and si at 20 epochs (about 1.5 h; state cleared;
# 0.593 with it kept), both run into a temporary directory and copied here.
rnf-bench --preset ewc-pmnist-2f05f40 --loggers text --out "$R/preset-ewc-pmnist-2f05f40" "${extra[@]}"
rnf-bench --preset si-pmnist-2f05f40 --loggers text --out "$R/preset-si-pmnist-2f05f40" "${extra[@]}"

# RNF's own data loaders have a generator of their own (they had shifted the global RNG, so
# RNF trained on other batches than Naive for the same seed): every RNF run redone, one at a time.
for bs in "split_mnist task" "split_fmnist task" "permuted_mnist domain" "split_mnist class" "split_fmnist class" \
          "split_cifar10 task" "split_cifar10 class"; do
  set -- $bs
  rnf-bench --benchmark "$1" --scenario "$2" --strategies rnf --seeds 0 1 2 --loggers text --out "$R/$1-$2" \
    --resume --rerun rnf "${extra[@]}"
done
rnf-bench --benchmark permuted_mnist --scenario task --strategies naive,rnf --seeds 0 1 2 --param rnf.max_drop=0.002 \
  --param rnf.retrain_epochs=0.9 --param rnf.capacity=fair --param rnf.keep_last=true --loggers text \
  --out "$R/permuted_mnist-task" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies naive,ewc,rnf --seeds 0 1 2 --loggers text \
  --out "$R/cost-split_mnist-task" --resume --rerun naive,ewc,rnf "${extra[@]}"

# Retraining at a multiple of the learning rate (retrain_lr_scale).
# split_mnist task: 5-seed validation sweep, written to tuned.json, then RNF rerun with the choice (4).
rnf-bench --sweep benchmarks/sweeps/rnf-task-lr.json --strategies rnf --benchmark split_mnist --scenario task \
  --seeds 0 1 2 3 4 --cpus-per-run 2 --loggers text --out "$R/search-split_mnist-task-lr" --resume --write-tuned \
  "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_mnist-task" --resume --rerun rnf "${extra[@]}"
# permuted_mnist, both scenarios, 2-seed validation sweeps (task: with Naive for reference).
rnf-bench --sweep benchmarks/sweeps/rnf-pmnist-task-lr.json --strategies naive,rnf --benchmark permuted_mnist \
  --scenario task --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-permuted_mnist-task-lr" --resume \
  "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-domain-lr.json --strategies rnf --benchmark permuted_mnist --scenario domain \
  --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-permuted_mnist-domain-lr" --resume "${extra[@]}"
# split_cifar10 task: the same scale, 2-seed validation sweep (1 kept).
rnf-bench --sweep benchmarks/sweeps/rnf-cifar-task-lr.json --strategies rnf --benchmark split_cifar10 --scenario task \
  --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-split_cifar10-task-lr" --resume "${extra[@]}"
# Naive (and RNF) on permuted_mnist domain at 5x the harness's learning rate, and Naive at the harness's rate,
# 2-seed validation, for reference.
rnf-bench --sweep benchmarks/sweeps/naive-rnf-domain.json --strategies naive,rnf --benchmark permuted_mnist \
  --scenario domain --seeds 0 1 --cpus-per-run 2 --loggers text --lr 0.05 --out "$R/lr-permuted_mnist-domain-0.05" \
  --resume "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/naive-rnf-domain.json --strategies naive --benchmark permuted_mnist \
  --scenario domain --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/lr-permuted_mnist-domain-0.01" --resume \
  "${extra[@]}"
# permuted_mnist task rerun with the task sweep's choice (5); the cost run redone with split_mnist's new values.
rnf-bench --benchmark permuted_mnist --scenario task --strategies naive,rnf --seeds 0 1 2 --param rnf.max_drop=0.002 \
  --param rnf.retrain_epochs=0.9 --param rnf.capacity=fair --param rnf.keep_last=true \
  --param rnf.retrain_lr_scale=5 --loggers text --out "$R/permuted_mnist-task" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies naive,ewc,rnf --seeds 0 1 2 --loggers text \
  --out "$R/cost-split_mnist-task" --resume --rerun naive,ewc,rnf "${extra[@]}"

# A task's head reads only its own units (head_transfer=False).
# A fresh network of the last task's 26 units per layer, trained at RNF's retraining rate (5x).
python -m avalanche_rnf.bench.capacity --benchmark permuted_mnist --widths 26 --seeds 0 1 2 --lr 0.05 \
  --out "$R/capacity-permuted_mnist-lr0.05"
# permuted_mnist task: 2-seed validation sweep, then RNF rerun with the choice.
rnf-bench --sweep benchmarks/sweeps/rnf-pmnist-task-head.json --strategies rnf --benchmark permuted_mnist \
  --scenario task --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-permuted_mnist-task-head" --resume \
  "${extra[@]}"
rnf-bench --benchmark permuted_mnist --scenario task --strategies naive,rnf --seeds 0 1 2 --param rnf.max_drop=0.002 \
  --param rnf.retrain_epochs=0.9 --param rnf.capacity=fair --param rnf.keep_last=true \
  --param rnf.retrain_lr_scale=5 --param rnf.head_transfer=false --loggers text --out "$R/permuted_mnist-task" \
  --resume --rerun rnf "${extra[@]}"
# The same switch on the other task-incremental benchmarks (validation; the default, True, stays on all three).
rnf-bench --sweep benchmarks/sweeps/rnf-task-head.json --strategies rnf --benchmark split_mnist --scenario task \
  --seeds 0 1 2 3 4 --cpus-per-run 2 --loggers text --out "$R/search-split_mnist-task-head" --resume "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-fmnist-head.json --strategies rnf --benchmark split_fmnist --scenario task \
  --seeds 0 1 2 --cpus-per-run 2 --loggers text --out "$R/search-split_fmnist-task-head" --resume "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-cifar-task-head.json --strategies rnf --benchmark split_cifar10 \
  --scenario task --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-split_cifar10-task-head" --resume \
  "${extra[@]}"

# permuted_mnist domain. A fresh network of 40, 46 and 52 units per layer at 5x the rate; a 2-seed
# validation sweep of capacity (fair, 0.09, 0.08) with recognition from the input at 5x, the choice written to
# tuned.json (the best average among the points whose last task is within 0.02 of Naive's validation
# last task, lr-permuted_mnist-domain-0.01; written by the snippet below); RNF rerun with it.
# (Sweeps earlier in this script start from tuned.json as it stands when they run.)
python -m avalanche_rnf.bench.capacity --benchmark permuted_mnist --widths 40 46 52 --seeds 0 1 2 --lr 0.05 \
  --out "$R/capacity-permuted_mnist-lr0.05-wide"
rnf-bench --sweep benchmarks/sweeps/rnf-domain-input.json --strategies rnf --benchmark permuted_mnist \
  --scenario domain --seeds 0 1 --cpus-per-run 2 --loggers text --out "$R/search-permuted_mnist-domain-input" \
  --resume "${extra[@]}"
python - <<'PY'
import json
path = "avalanche_rnf/bench/tuned.json"
tuned = json.load(open(path))
tuned["permuted_mnist/domain"]["rnf"].update(
    capacity=0.09, retrain_lr_scale=5, recognition_layers="input", recognition_shrinkage=1.0)
with open(path, "w") as f:
    f.write(json.dumps(tuned, indent=2, sort_keys=True) + "\n")
PY
rnf-bench --benchmark permuted_mnist --scenario domain --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/permuted_mnist-domain" --resume --rerun rnf "${extra[@]}"
# Does the input recognise class-incremental tasks as well? (split_mnist validation, seed 0; it does not)
python -m avalanche_rnf.bench.recognizers --benchmark split_mnist --seed 0 --validation 0.1 \
  --out "$R/recognizers-split_mnist-validation-input"

# Ray: speed-up of --ray over the sequential run and Ray's per-run overhead.
python -m avalanche_rnf.bench.scaling --out "$R/ray-scaling-split_digits"
python -m avalanche_rnf.bench.scaling --grid "--benchmark split_mnist --scenario task" --out "$R/ray-scaling-split_mnist"

# Explanation drift (--explain): LRP heatmaps of every experience's probe images after each later experience,
# every strategy, 3 seeds; heatmaps in explanations/, drift table and figures in summary.md and plots/.
rnf-bench --benchmark split_mnist --scenario task --seeds 0 1 2 --explain --loggers text \
  --out "$R/explain-split_mnist-task" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --seeds 0 1 2 --explain --loggers text --ray \
  --out "$R/explain-split_cifar10-task" "${extra[@]}"

# Online streams: every experience seen once in sub-experiences of 64 samples, offline parameters.
for scenario in task class; do
  rnf-bench --benchmark split_mnist --scenario "$scenario" --online 64 --seeds 0 1 2 \
    --out "$R/online-split_mnist-$scenario" "${extra[@]}"
done
rnf-bench --benchmark split_mnist --scenario class --online 10 --strategies naive,lwf,er_ace,rnf --seeds 0 1 2 \
  --loggers text --out "$R/online10-split_mnist-class" "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --online 10 --strategies ewc --seeds 0 1 2 \
  --loggers text --out "$R/online10-split_mnist-class" --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --online 10 --strategies naive,ewc,lwf,rnf --seeds 0 1 2 \
  --loggers text --out "$R/online10-split_mnist-task" "${extra[@]}"
# Sub-experiences of 10: every strategy again, with ER-ACE and Replay, in one command per scenario (times side by side).
for scenario in task class; do
  rnf-bench --benchmark split_mnist --scenario "$scenario" --online 10 --strategies naive,ewc,lwf,er_ace,replay,rnf \
    --seeds 0 1 2 --loggers text --out "$R/online10-split_mnist-$scenario" --resume --rerun naive,ewc,lwf,er_ace,rnf \
    "${extra[@]}"
done
# Sub-experiences of 64: every strategy again in one command per scenario (times side by side).
for scenario in task class; do
  rnf-bench --benchmark split_mnist --scenario "$scenario" --online 64 --strategies naive,ewc,lwf,er_ace,replay,rnf \
    --seeds 0 1 2 --loggers text --out "$R/online-split_mnist-$scenario" --resume \
    --rerun naive,ewc,lwf,er_ace,replay,rnf "${extra[@]}"
done

# Streaming LDA on the raw pixels, added to the class-incremental MNIST-family runs.
for b in split_mnist split_fmnist; do
  rnf-bench --benchmark "$b" --scenario class --strategies slda --seeds 0 1 2 --loggers text \
    --out "$R/$b-class" --resume "${extra[@]}"
done
# Streaming LDA on the features of the network trained on the first experience (slda_backbone), added to
# the class-incremental columns, and the baselines split_cifar10-class did not have.
for b in split_mnist split_fmnist; do
  rnf-bench --benchmark "$b" --scenario class --strategies slda_backbone --seeds 0 1 2 --loggers text \
    --out "$R/$b-class" --resume "${extra[@]}"
done
rnf-bench --benchmark split_cifar10 --scenario class --strategies slda_backbone,ewc,si,mas,joint --seeds 0 1 2 --ray \
  --loggers text --out "$R/split_cifar10-class" --resume "${extra[@]}"
# Generative Replay (Avalanche's, its VAE normalised as the stream), added to the class-incremental columns.
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --benchmark "$b" --scenario class --strategies generative_replay --seeds 0 1 2 --loggers text \
    --out "$R/$b-class" --resume "${extra[@]}"
done
# On split_cifar10-class its VAE (Avalanche's fully connected one or a convolutional one) and latent size were
# chosen on validation splits (sweep seeds 100 and 101, into tuned.json), then the test stream read once.
rnf-bench --sweep benchmarks/sweeps/generative-class.json --benchmark split_cifar10 --scenario class \
  --strategies generative_replay --seeds 100 101 --loggers text --write-tuned \
  --out "$R/sweep-generative-split_cifar10-class" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies generative_replay --seeds 0 1 2 --ray --loggers text \
  --out "$R/split_cifar10-class" --resume --rerun generative_replay "${extra[@]}"

# Unit scores against simple alternatives on a long stream (PermutedMNIST, 20 tasks, task-incremental),
# at the same tolerance and the fair share, 2 seeds each.
for job in "lrp 0 1" "random 0 1" "weight 0 1" "activation 0 1" "taylor 0 1"; do
  set -- $job; scores=$1; shift
  rnf-bench --benchmark permuted_mnist --scenario task --experiences 20 --strategies rnf --seeds "$@" \
    --param rnf.max_drop=0.01 --param rnf.unit_scores=$scores --loggers text \
    --out "$R/ablation-permuted_mnist20-task-$scores" "${extra[@]}"
done
# The same on a narrow network: SplitCIFAR-10 task-incremental, the small CNN at half width (16 channels in the
# first block, a 128-unit hidden layer), no retraining, 3 seeds each.
for scores in lrp random weight activation taylor; do
  rnf-bench --benchmark split_cifar10 --scenario task --width 16 --hidden-size 128 --strategies rnf --seeds 0 1 2 \
    --param rnf.max_drop=0.01 --param rnf.retrain_epochs=0 --param rnf.unit_scores=$scores --loggers text \
    --out "$R/ablation-split_cifar10-task-narrow-$scores" "${extra[@]}"
done
# ... and with the kept units retrained for the rest of each task (0.9 epochs at twice the rate, as the defaults).
for scores in lrp random weight; do
  rnf-bench --benchmark split_cifar10 --scenario task --width 16 --hidden-size 128 --strategies rnf --seeds 0 1 2 \
    --param rnf.max_drop=0.01 --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0 \
    --param rnf.unit_scores=$scores --ray --loggers text --out "$R/ablation-split_cifar10-task-narrow-retrained-$scores" \
    "${extra[@]}"
done

# The class-incremental default tolerance (avalanche_rnf.scenario.DEFAULT_MAX_DROP), chosen on validation splits
# with RNF otherwise at its defaults (sweep seeds 100 and 101, disjoint from the test seeds).
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-tolerance.json --benchmark "$b" --scenario class --strategies rnf \
    --seeds 100 101 --param rnf.reference_size=1000 --param rnf.retrain_epochs=0 --param 'rnf.task_inference="auto"' \
    --param rnf.keep_last=false --loggers text --out "$R/sweep-defaults-tolerance-$b-class" "${extra[@]}"
done

# The main job (split_digits, task-incremental): one search budget for every strategy (key parameter x learning
# rate, sweep seeds 100 and 101), written into tuned.json, then the test stream read once with 5 seeds.
rnf-bench --sweep benchmarks/sweeps/split_digits-task.json --benchmark split_digits --scenario task --seeds 100 101 \
  --loggers text --out "$R/sweep-split_digits-task" --write-tuned "${extra[@]}"
rnf-bench --benchmark split_digits --scenario task --seeds 0 1 2 3 4 --loggers text --out "$R/split_digits-task" \
  "${extra[@]}"

# The task-incremental default retraining (avalanche_rnf.scenario.DEFAULT_RETRAINING) and a domain-incremental
# sweep of retraining x the recogniser's shrinkage, with RNF otherwise at its defaults (seeds 100 and 101).
defaults=(--param rnf.keep_last=false --param rnf.reference_size=1000 --param rnf.max_drop=null)
for b in permuted_mnist split_mnist split_digits; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-retraining.json --benchmark "$b" --scenario task --strategies rnf \
    --seeds 100 101 "${defaults[@]}" --loggers text --out "$R/sweep-defaults-retraining-$b-task" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-domain.json --benchmark permuted_mnist --scenario domain \
  --strategies rnf --seeds 100 101 "${defaults[@]}" --param 'rnf.task_inference="auto"' --param 'rnf.capacity="fair"' \
  --param 'rnf.recognition_layers="all"' --loggers text --out "$R/sweep-defaults-domain-permuted_mnist-domain" \
  "${extra[@]}"
# The domain-incremental defaults (avalanche_rnf.scenario.DEFAULT_RECOGNITION and DEFAULT_RETRAINING): the
# recogniser's features x its shrinkage x retraining.
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-domain-layers.json --benchmark permuted_mnist --scenario domain \
  --strategies rnf --seeds 100 101 "${defaults[@]}" --param 'rnf.task_inference="auto"' --param 'rnf.capacity="fair"' \
  --param rnf.retrain_lr_scale=1 --loggers text --no-plots \
  --out "$R/sweep-defaults-recognition-permuted_mnist-domain" "${extra[@]}"
# The retraining's rate at the defaults (avalanche_rnf.scenario.RETRAINING_RATE): lr_scale 1, 2 or 4 with 0.9 epochs.
for b in permuted_mnist split_mnist split_fmnist split_digits split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-retrain-rate.json --benchmark "$b" --scenario task --strategies rnf \
    --seeds 100 101 "${defaults[@]}" --param rnf.retrain_epochs=0.9 --loggers text --no-plots \
    --out "$R/sweep-defaults-retrain-rate-$b-task" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-retrain-rate.json --benchmark permuted_mnist --scenario domain \
  --strategies rnf --seeds 100 101 "${defaults[@]}" --param rnf.retrain_epochs=0.9 --param 'rnf.task_inference="auto"' \
  --param 'rnf.capacity="fair"' --loggers text --no-plots --out "$R/sweep-defaults-retrain-rate-permuted_mnist-domain" \
  "${extra[@]}"
# The class-incremental retraining at the defaults (avalanche_rnf.scenario.DEFAULT_RETRAINING): none or 0.9 epochs
# at 2x, with the class tolerance and RNF otherwise at its defaults.
class_defaults=(--seeds 100 101 --param rnf.keep_last=false --param 'rnf.task_inference="auto"'
                --param rnf.max_drop=0.005 --param rnf.retrain_lr_scale=2.0 --param rnf.recognition_power=1.0
                --param rnf.task_posterior=null --param rnf.recognition_samples=3000 --param 'rnf.recognition_views=[]')
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-retraining.json --benchmark "$b" --scenario class \
    --strategies rnf "${class_defaults[@]}" --param rnf.reference_size=1000 --loggers text --no-plots \
    --out "$R/sweep-defaults-class-retraining-$b-class" "${extra[@]}"
done
# The class-incremental recogniser (avalanche_rnf.scenario.DEFAULT_RECOGNITION): every layer's features alone, or
# with the input's values in an LDA pooled over every task ("all+input"), at the defaults and at each class column's
# own values; the weight of the two scores (avalanche_rnf.pooled.WEIGHT) from the recogniser comparison on seeds
# 100 and 101. The class columns' RNF runs were then read once with it (--resume --rerun rnf on their commands).
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-recognition.json --benchmark "$b" --scenario class \
    --strategies rnf "${class_defaults[@]}" --param rnf.retrain_epochs=0.9 --param rnf.reference_size=300 \
    --loggers text --no-plots --ray --out "$R/sweep-defaults-class-recognition-$b-class" "${extra[@]}"
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-recognition.json --benchmark "$b" --scenario class \
    --strategies rnf --seeds 100 101 --loggers text --no-plots --ray --out "$R/sweep-class-recognition-$b-class" \
    "${extra[@]}"
done
for seed in 100 101; do
  for b in split_mnist split_fmnist; do
    python -m avalanche_rnf.bench.recognizers --benchmark "$b" --seed "$seed" --validation 0.1 \
      --out "$R/recognizers-$b-validation-seed$seed"
  done
done
# The relevance pass's sample count at the defaults: reference_size 300 against 1000 (the 1000 points are the
# defaults' points of the two sweeps above), RNF otherwise at its defaults. task_defaults: the flags that take the
# harness's tuned task-incremental RNF back to the library's defaults (reference_size is swept or added).
task_defaults=(--param rnf.keep_last=false --param rnf.max_drop=null --param rnf.retrain_epochs=0.9
               --param rnf.retrain_lr_scale=2.0)
for b in permuted_mnist split_mnist split_fmnist split_digits split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-reference-size.json --benchmark "$b" --scenario task --strategies rnf \
    --seeds 100 101 "${task_defaults[@]}" --loggers text --no-plots --out "$R/sweep-defaults-reference-size-$b-task" \
    "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-reference-size.json --benchmark permuted_mnist --scenario domain \
  --strategies rnf --seeds 100 101 "${task_defaults[@]}" --param 'rnf.task_inference="auto"' \
  --param 'rnf.capacity="fair"' --loggers text --no-plots --out "$R/sweep-defaults-reference-size-permuted_mnist-domain" \
  "${extra[@]}"
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-reference-size.json --benchmark "$b" --scenario class \
    --strategies rnf "${class_defaults[@]}" --param rnf.retrain_epochs=0.9 --loggers text --no-plots \
    --out "$R/sweep-defaults-reference-size-$b-class" "${extra[@]}"
done

# RNF at the library's defaults on the columns outside the mechanism ablation (same seeds as each column).
python -m avalanche_rnf.bench.defaults_table "$R" | while read -r cmd; do
  eval "$cmd" '"${extra[@]}"' < /dev/null
done

# RNF's mechanisms one at a time on split_mnist (task- and class-incremental): Ede et al.'s relevance freezing,
# then isolation, the fair capacity, task inference (class), the tolerance search (the last step, retraining, is
# the tuned RNF of the headline runs above); and RNF at the library's defaults.
python -m avalanche_rnf.bench.mechanism_table "$R" | while read -r cmd; do
  $cmd "${extra[@]}" < /dev/null
done

# Summaries, plots and README tables from the result files.
python -m avalanche_rnf.bench.report --run-dirs

# Five seeds on the MNIST-family split columns: seeds 3 and 4 of every strategy, with the same parameters.
rnf-bench --benchmark split_mnist --scenario class --seeds 3 4 --loggers text --out "$R/split_mnist-class" \
  --strategies naive,ewc,si,lwf,mas,packnet,replay,joint,rnf,slda,slda_backbone,generative_replay --resume "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario task --seeds 3 4 --loggers text --out "$R/split_fmnist-task" \
  --strategies naive,ewc,si,lwf,mas,packnet,replay,joint,rnf --resume "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario class --seeds 3 4 --loggers text --out "$R/split_fmnist-class" \
  --strategies naive,ewc,si,lwf,mas,replay,joint,rnf,slda,slda_backbone,generative_replay --resume "${extra[@]}"
# split_fmnist class: EWC, SI, LwF and MAS under the main job's budget (key parameter x learning rate, sweep
# seeds 100 and 101), written to tuned.json, then rerun on every test seed.
rnf-bench --sweep benchmarks/sweeps/regularisers-class.json --strategies ewc,si,lwf,mas --benchmark split_fmnist \
  --scenario class --seeds 100 101 --loggers text --out "$R/sweep-regularisers-split_fmnist-class" --write-tuned \
  "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario class --strategies ewc,si,lwf,mas --seeds 0 1 2 3 4 --loggers text \
  --out "$R/split_fmnist-class" --resume --rerun ewc,si,lwf,mas "${extra[@]}"
# The same on split_mnist class.
rnf-bench --sweep benchmarks/sweeps/regularisers-class.json --strategies ewc,si,lwf,mas --benchmark split_mnist \
  --scenario class --seeds 100 101 --loggers text --out "$R/sweep-regularisers-split_mnist-class" --write-tuned \
  "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies ewc,si,lwf,mas --seeds 0 1 2 3 4 --loggers text \
  --out "$R/split_mnist-class" --resume --rerun ewc,si,lwf,mas "${extra[@]}"
# Naive, Replay and Joint on both class columns: the learning rate under the same budget, then every test seed.
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/lr-class.json --strategies naive,replay,joint --benchmark "$b" --scenario class \
    --seeds 100 101 --loggers text --out "$R/sweep-lr-$b-class" --write-tuned "${extra[@]}"
  rnf-bench --benchmark "$b" --scenario class --strategies naive,replay,joint --seeds 0 1 2 3 4 --loggers text \
    --out "$R/$b-class" --resume --rerun naive,replay,joint "${extra[@]}"
done
# The mechanism and defaults rows of the MNIST-family columns: seeds 3 and 4, each with its directory's parameters.
rnf-bench --benchmark split_fmnist --scenario class --strategies rnf --seeds 3 4 --param rnf.keep_last=false --param rnf.retrain_epochs=0 --param rnf.reference_size=1000 --param rnf.task_inference=auto --param rnf.max_drop=0.005 --loggers text --out "$R"/defaults-split_fmnist-class --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param rnf.task_inference=null --param rnf.max_drop=null --param rnf.retrain_epochs=0 --param rnf.isolate=true --loggers text --out "$R"/mechanisms-split_mnist-class-capacity --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param rnf.keep_last=false --param rnf.max_drop=0.005 --param rnf.retrain_epochs=0 --param rnf.reference_size=1000 --param 'rnf.task_inference="auto"' --loggers text --out "$R"/mechanisms-split_mnist-class-defaults --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param rnf.max_drop=null --param rnf.retrain_epochs=0 --param rnf.isolate=true --loggers text --out "$R"/mechanisms-split_mnist-class-inference --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param 'rnf.capacity="unlimited"' --param rnf.keep_last=false --param rnf.task_inference=null --param rnf.max_drop=null --param rnf.retrain_epochs=0 --param rnf.isolate=true --loggers text --out "$R"/mechanisms-split_mnist-class-isolation --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param rnf.isolate=false --param 'rnf.capacity="unlimited"' --param rnf.keep_last=false --param rnf.task_inference=null --param rnf.max_drop=null --param rnf.retrain_epochs=0 --loggers text --out "$R"/mechanisms-split_mnist-class-plain --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario class --strategies rnf --seeds 3 4 --param rnf.retrain_epochs=0 --param rnf.isolate=true --loggers text --out "$R"/mechanisms-split_mnist-class-tolerance --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 3 4 --param rnf.max_drop=null --param rnf.retrain_epochs=0 --loggers text --out "$R"/mechanisms-split_mnist-task-capacity --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 3 4 --param rnf.keep_last=false --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0 --param rnf.reference_size=1000 --param rnf.max_drop=null --loggers text --out "$R"/mechanisms-split_mnist-task-defaults --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 3 4 --param 'rnf.capacity="unlimited"' --param rnf.keep_last=false --param rnf.max_drop=null --param rnf.retrain_epochs=0 --loggers text --out "$R"/mechanisms-split_mnist-task-isolation --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 3 4 --param rnf.isolate=false --param 'rnf.capacity="unlimited"' --param rnf.keep_last=false --param rnf.max_drop=null --param rnf.retrain_epochs=0 --loggers text --out "$R"/mechanisms-split_mnist-task-plain --resume "${extra[@]}"
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 3 4 --param rnf.retrain_epochs=0 --loggers text --out "$R"/mechanisms-split_mnist-task-tolerance --resume "${extra[@]}"
# The PermutedMNIST domain column: seeds 3 and 4 for every strategy.
rnf-bench --benchmark permuted_mnist --scenario domain --seeds 3 4 --loggers text --out "$R/permuted_mnist-domain" \
  --resume "${extra[@]}"
# The domain column's peers with the same kind of recogniser: task heads, the head chosen by recognition.
rnf-bench --benchmark permuted_mnist --scenario task --infer-tasks --strategies naive,ewc,si,lwf,mas,replay,joint \
  --seeds 0 1 2 --param ewc.ewc_lambda=100 --param si.si_lambda=100 --param lwf.alpha=2 --param mas.lambda_reg=0.1 \
  --loggers text --ray --out "$R/recognised-permuted_mnist" "${extra[@]}"
# permuted_mnist task: seeds 3 and 4.
rnf-bench --benchmark permuted_mnist --scenario task --strategies naive,rnf --seeds 3 4 --param rnf.max_drop=0.002 \
  --param rnf.retrain_epochs=0.9 --param rnf.capacity=fair --param rnf.keep_last=true \
  --param rnf.retrain_lr_scale=5 --param rnf.head_transfer=false --loggers text --out "$R/permuted_mnist-task" \
  --resume "${extra[@]}"
# Peak memory of two columns' configurations next to Naive's, on the validation split (each run alone).
rnf-bench --sweep benchmarks/sweeps/memory-permuted_mnist-domain.json --strategies naive,rnf --benchmark permuted_mnist \
  --scenario domain --seeds 100 --cpus-per-run 2 --loggers text --out "$R/memory-permuted_mnist-domain" "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/memory-split_cifar10-class.json --strategies naive,rnf --benchmark split_cifar10 \
  --scenario class --seeds 100 --cpus-per-run 2 --loggers text --out "$R/memory-split_cifar10-class" "${extra[@]}"
# The domain column's peers with the same kind of recogniser: seeds 3 and 4.
rnf-bench --benchmark permuted_mnist --scenario task --infer-tasks --strategies naive,ewc,si,lwf,mas,replay,joint \
  --seeds 3 4 --param ewc.ewc_lambda=100 --param si.si_lambda=100 --param lwf.alpha=2 --param mas.lambda_reg=0.1 \
  --loggers text --ray --out "$R/recognised-permuted_mnist" --resume "${extra[@]}"
# Peak memory next to Naive's with RNF at the library's defaults, domain-incremental PermutedMNIST (validation split,
# each run alone).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark permuted_mnist \
  --scenario domain --seeds 100 --cpus-per-run 2 "${task_defaults[@]}" --param 'rnf.task_inference="auto"' \
  --param 'rnf.capacity="fair"' --loggers text --out "$R/memory-defaults-permuted_mnist-domain" "${extra[@]}"
# SplitCIFAR-10 task-incremental with Avalanche's SlimResNet18: Naive, Joint and RNF at the library's defaults.
rnf-bench --benchmark split_cifar10 --scenario task --model slim_resnet18 --strategies naive,joint,rnf --seeds 0 1 2 \
  "${task_defaults[@]}" --param rnf.reference_size=300 --loggers text --ray \
  --out "$R/split_cifar10-task-slim_resnet18" "${extra[@]}"
# ... and the baselines beside it, at the values searched for the small CNN (PackNet does not support BatchNorm).
rnf-bench --benchmark split_cifar10 --scenario task --model slim_resnet18 --strategies replay,lwf,ewc,si,mas --seeds 0 1 2 \
  --loggers text --ray --out "$R/split_cifar10-task-slim_resnet18" --resume "${extra[@]}"
# Training time next to Naive's with RNF at its defaults on SlimResNet18: one pair side by side on a quiet machine
# (validation split).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 100 "${task_defaults[@]}" --loggers text --ray \
  --out "$R/time-defaults-split_cifar10-task-slim_resnet18" "${extra[@]}"
# The last task's capacity at the defaults (avalanche_rnf.scenario.DEFAULT_KEEP_LAST): keep_last off or on, with RNF
# otherwise at its defaults, on validation splits (seeds 100 and 101); on SlimResNet18 only on (the off runs are
# time-defaults-split_cifar10-task-slim_resnet18 and the same command on seed 101).
kl_task=(--param rnf.max_drop=null --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0)
for b in split_digits split_mnist split_fmnist permuted_mnist split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-keep-last.json --benchmark "$b" --scenario task --strategies rnf \
    --seeds 100 101 "${kl_task[@]}" --loggers text --no-plots --ray --out "$R/sweep-defaults-keep-last-$b-task" \
    "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-reference-size.json --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --strategies rnf --seeds 100 101 "${kl_task[@]}" --param rnf.keep_last=true --loggers text \
  --no-plots --ray --out "$R/sweep-defaults-keep-last-split_cifar10-task-slim_resnet18" "${extra[@]}"
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-keep-last.json --benchmark "$b" --scenario class --strategies rnf \
    --seeds 100 101 --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0 \
    --param 'rnf.task_inference="auto"' --param rnf.max_drop=0.005 --loggers text --no-plots --ray \
    --out "$R/sweep-defaults-keep-last-$b-class" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-keep-last.json --benchmark permuted_mnist --scenario domain \
  --strategies rnf --seeds 100 101 "${kl_task[@]}" --param 'rnf.task_inference="auto"' --param 'rnf.capacity="fair"' \
  --loggers text --no-plots --ray --out "$R/sweep-defaults-keep-last-permuted_mnist-domain" "${extra[@]}"
# RNF at these defaults, read once more on the test stream where they changed it: the task-incremental and domain
# columns' defaults runs (the class columns' defaults keep the last task capped, as before) and SlimResNet18.
python -m avalanche_rnf.bench.defaults_table "$R" | grep -v -- "--scenario class" | while read -r cmd; do
  eval "$cmd" --ray --resume --rerun rnf '"${extra[@]}"' < /dev/null
done
new_defaults=(--param 'rnf.keep_last="auto"' --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0
              --param rnf.reference_size=300 --param rnf.max_drop=null)
rnf-bench --benchmark split_mnist --scenario task --strategies rnf --seeds 0 1 2 3 4 "${new_defaults[@]}" \
  --loggers text --ray --out "$R/mechanisms-split_mnist-task-defaults" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --model slim_resnet18 --strategies rnf --seeds 0 1 2 \
  "${new_defaults[@]}" --loggers text --ray --out "$R/split_cifar10-task-slim_resnet18" --resume --rerun rnf \
  "${extra[@]}"
# Training time next to Naive's with RNF at its current defaults on SlimResNet18 (a retrained unit's BatchNorm
# statistics measured once, at the freeze): one pair side by side on a quiet machine (validation split).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 100 "${new_defaults[@]}" --loggers text --ray \
  --out "$R/time-split_cifar10-task-slim_resnet18" "${extra[@]}"
# The class-incremental loss over each experience's own classes (TaskInference(own_classes=True)): off or on, at the
# defaults and at the MNIST-family class columns' own values (validation splits, seeds 100 and 101). Then RNF's runs
# with task inference read once with it: the class columns, their defaults runs, the class mechanism rows that infer
# tasks, and the online class runs.
for b in split_mnist split_fmnist split_cifar10; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-own-classes.json --benchmark "$b" --scenario class \
    --strategies rnf "${class_defaults[@]}" --param rnf.retrain_epochs=0.9 --param rnf.reference_size=300 \
    --loggers text --no-plots --ray --out "$R/sweep-defaults-class-own-classes-$b-class" "${extra[@]}"
done
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-own-classes.json --benchmark "$b" --scenario class \
    --strategies rnf --seeds 100 101 --loggers text --no-plots --ray --out "$R/sweep-class-own-classes-$b-class" \
    "${extra[@]}"
  rnf-bench --benchmark "$b" --scenario class --strategies rnf --seeds 0 1 2 3 4 --loggers text --ray \
    --out "$R/$b-class" --resume --rerun rnf "${extra[@]}"
done
python -m avalanche_rnf.bench.defaults_table "$R" | grep -- "--scenario class" | while read -r cmd; do
  eval "$cmd" --ray --resume --rerun rnf '"${extra[@]}"' < /dev/null
done
python -m avalanche_rnf.bench.mechanism_table "$R" | grep -E "class-(defaults|inference|tolerance)$" | \
  sed 's/--seeds 0 1 2 /--seeds 0 1 2 3 4 /' | while read -r cmd; do
  eval "$cmd" --ray --resume --rerun rnf '"${extra[@]}"' < /dev/null
done
for size in 64 10; do
  out="$R/online-split_mnist-class"; [ "$size" = 10 ] && out="$R/online10-split_mnist-class"
  rnf-bench --benchmark split_mnist --scenario class --online "$size" --strategies rnf --seeds 0 1 2 --loggers text \
    --ray --out "$out" --resume --rerun rnf "${extra[@]}"
done
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --loggers text --ray \
  --out "$R/split_cifar10-class" --resume --rerun rnf "${extra[@]}"
# Class-incremental recognition at the defaults: feature power 1 or 0.5 x the mirror image averaged in or not on
# SplitCIFAR-10; then every training sample for the statistics, and the class tolerance checked again, with the
# own-classes loss and the mirrored views that views="auto" picks there (validation splits, seeds 100 and 101).
# Then the split_cifar10-class defaults run read once with views="auto".
class_now=(--strategies rnf --seeds 100 101 --param rnf.keep_last=auto --param rnf.retrain_epochs=0.9
           --param rnf.retrain_lr_scale=2.0 --param rnf.reference_size=300 --param rnf.task_inference=auto
           --param rnf.recognition_power=1.0 --param rnf.task_posterior=null --param rnf.recognition_samples=3000)
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-conv-recognition.json --benchmark split_cifar10 --scenario class \
  "${class_now[@]}" --param rnf.max_drop=0.005 --param 'rnf.recognition_views=[]' --loggers text --no-plots --ray \
  --out "$R/sweep-defaults-class-conv-recognition-split_cifar10-class" "${extra[@]}"
for b in split_cifar10 split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-samples.json --benchmark "$b" --scenario class \
    "${class_now[@]}" --param 'rnf.recognition_views="auto"' --param rnf.max_drop=0.005 --loggers text --no-plots \
    --ray --out "$R/sweep-defaults-class-samples-$b-class" "${extra[@]}"
done
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-defaults-tolerance.json --benchmark "$b" --scenario class \
    "${class_now[@]}" --param 'rnf.recognition_views="auto"' --loggers text --no-plots --ray \
    --out "$R/sweep-defaults-tolerance-class-$b-class" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-tolerance-off.json --benchmark split_cifar10 --scenario class \
  "${class_now[@]}" --param 'rnf.recognition_views="auto"' --loggers text --no-plots --ray \
  --out "$R/sweep-defaults-tolerance-class-split_cifar10-class" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --param rnf.keep_last=auto \
  --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0 --param rnf.reference_size=300 \
  --param rnf.task_inference=auto --param rnf.max_drop=0.005 --param rnf.recognition_power=1.0 \
  --param rnf.task_posterior=null --param rnf.recognition_samples=3000 --param 'rnf.recognition_views="auto"' \
  --loggers text --out "$R/defaults-split_cifar10-class" --ray --resume --rerun rnf "${extra[@]}"
# SlimResNet18 on class-incremental SplitCIFAR-10: Naive and RNF at the library's defaults, whose task_inference="auto"
# infers tasks there (validation split, seed 100).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario class \
  --model slim_resnet18 --seeds 100 --param rnf.keep_last=auto --param rnf.retrain_epochs=0.9 \
  --param rnf.retrain_lr_scale=2.0 --param rnf.reference_size=300 --param rnf.task_inference=auto \
  --param rnf.max_drop=0.005 --param rnf.recognition_power=1.0 --param rnf.task_posterior=null \
  --param rnf.recognition_samples=3000 --param 'rnf.recognition_views="auto"' --loggers text --ray --no-plots \
  --out "$R/sweep-defaults-split_cifar10-class-slim_resnet18" "${extra[@]}"
# The SlimResNet18 class-incremental column: RNF at the library's defaults, Naive, Joint and Streaming LDA on the
# features of the network Naive trained on the first experience (3 seeds), Replay on 2 seeds; the other strategies
# were not run.
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies rnf,naive,slda_backbone,joint \
  --seeds 0 1 2 --param rnf.keep_last=auto --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0 \
  --param rnf.reference_size=300 --param rnf.task_inference=auto --param rnf.max_drop=0.005 \
  --param rnf.recognition_power=1.0 --param rnf.task_posterior=null --param rnf.recognition_samples=3000 \
  --param 'rnf.recognition_views="auto"' --param joint.lr=0.01 --loggers text --ray \
  --out "$R/split_cifar10-class-slim_resnet18" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies replay --seeds 0 1 \
  --param replay.lr=0.01 --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18" --resume "${extra[@]}"
# LwF on the SlimResNet18 class-incremental column, at the alpha searched for the small CNN's task-incremental column
# (seeds 0 and 1; seed 2 ran with RNF's read below; Replay's seed 2 was not run).
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies lwf --seeds 0 1 \
  --param lwf.alpha=2.0 --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18" --resume "${extra[@]}"
# Frozen BatchNorm channels normalised with their running statistics while later tasks train (the library), or
# with each batch's statistics (the harness's rnf.frozen_norms=batch): RNF at the defaults on validation splits
# (seeds 100 and 101), then the SplitCIFAR-10 columns read once more with it.
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-frozen-norms.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task "${new_defaults[@]}" \
  --out "$R/sweep-defaults-frozen-norms-split_cifar10-task" "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-frozen-norms.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 "${new_defaults[@]}" \
  --out "$R/sweep-defaults-frozen-norms-split_cifar10-task-slim_resnet18" "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-frozen-norms.json --benchmark split_cifar10 --scenario class \
  "${class_now[@]}" --param rnf.max_drop=0.005 --param 'rnf.recognition_views="auto"' --loggers text --no-plots \
  --ray --out "$R/sweep-defaults-frozen-norms-split_cifar10-class" "${extra[@]}"
for scenario in task class; do
  rnf-bench --benchmark split_cifar10 --scenario "$scenario" --strategies rnf --seeds 0 1 2 --loggers text \
    --out "$R/split_cifar10-$scenario" --resume --rerun rnf "${extra[@]}"
done
rnf-bench --benchmark split_cifar10 --scenario task --strategies rnf --seeds 0 1 2 "${new_defaults[@]}" \
  --loggers text --out "$R/defaults-split_cifar10-task" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --model slim_resnet18 --strategies rnf --seeds 0 1 2 \
  "${new_defaults[@]}" --loggers text --out "$R/split_cifar10-task-slim_resnet18" --resume --rerun rnf "${extra[@]}"
class_defaults_now=(--param rnf.keep_last=auto --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0
                    --param rnf.reference_size=300 --param rnf.task_inference=auto --param rnf.max_drop=0.005
                    --param rnf.recognition_power=1.0 --param rnf.task_posterior=null
                    --param rnf.recognition_samples=3000 --param 'rnf.recognition_views="auto"')
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 "${class_defaults_now[@]}" \
  --loggers text --out "$R/defaults-split_cifar10-class" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies rnf,lwf --seeds 0 1 2 \
  --param lwf.alpha=2.0 "${class_defaults_now[@]}" --loggers text --ray \
  --out "$R/split_cifar10-class-slim_resnet18" --resume --rerun rnf "${extra[@]}"
# The own-classes loss checked online at the class defaults (validation splits, seeds 100 and 101), then RNF's online
# columns read once more with the held-out share kept over each origin experience.
for b in split_mnist split_fmnist; do
  for size in 64 10; do
    tag="online"; [ "$size" = 10 ] && tag="online10"
    rnf-bench --sweep benchmarks/sweeps/rnf-defaults-class-own-classes.json --benchmark "$b" --scenario class \
      --online "$size" --strategies rnf --seeds 100 101 "${class_defaults_now[@]}" --loggers text --no-plots \
      --out "$R/sweep-defaults-class-own-classes-$tag-$b-class" "${extra[@]}"
  done
done
for scenario in task class; do
  for size in 64 10; do
    out="$R/online-split_mnist-$scenario"; [ "$size" = 10 ] && out="$R/online10-split_mnist-$scenario"
    rnf-bench --benchmark split_mnist --scenario "$scenario" --online "$size" --strategies rnf --seeds 0 1 2 \
      --loggers text --out "$out" --resume --rerun rnf "${extra[@]}"
  done
done
# The class-incremental SlimResNet18 column's other baselines at the harness's values: Replay's third seed, then EWC,
# SI and MAS (stopped after their seed 2 and run again with --resume for seeds 0 and 1). EWC's, SI's and MAS's values
# are pinned, and so are Replay's and Joint's learning rates (also in the column's first commands): the small CNN's
# later validation sweeps changed the table's values for split_cifar10 class.
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies replay,ewc,si,mas \
  --seeds 2 0 1 --param replay.lr=0.01 --param ewc.ewc_lambda=10000.0 --param si.si_lambda=1000.0 \
  --param mas.lambda_reg=1.0 --loggers text --ray \
  --out "$R/split_cifar10-class-slim_resnet18" --resume "${extra[@]}"
# The SlimResNet18 time pair read again with the current code (the same command as above).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 100 "${new_defaults[@]}" --loggers text --ray \
  --out "$R/time-split_cifar10-task-slim_resnet18" "${extra[@]}"
# Longer retraining on SlimResNet18, task-incremental, at the defaults otherwise (validation splits, seeds 100 and
# 101): is the gap to Naive on each task what retraining fails to win back? Level with the default.
rnf-bench --sweep benchmarks/sweeps/rnf-task-retrain-longer.json --strategies rnf --seeds 100 101 \
  --benchmark split_cifar10 --scenario task --model slim_resnet18 --param rnf.max_drop=null \
  --param rnf.retrain_lr_scale=2.0 --param 'rnf.keep_last="auto"' --param rnf.reference_size=300 --loggers text \
  --no-plots --ray --out "$R/sweep-task-retrain-longer-split_cifar10-task-slim_resnet18" "${extra[@]}"
# Generative Replay on the class-incremental SlimResNet18 column, at the values chosen for the small CNN.
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies generative_replay --seeds 0 1 2 \
  --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18" --resume "${extra[@]}"
# split_cifar10-class: EWC, SI, LwF and MAS had their key parameter chosen on the validation split (3 values at the
# benchmark's learning rate, sweep seed 100; into tuned.json), then the test stream read once at the chosen values
# (LwF chose the value it had run with, so its test runs were kept).
rnf-bench --sweep benchmarks/sweeps/regularisers-class-key.json --strategies ewc,si,lwf,mas --benchmark split_cifar10 \
  --scenario class --seeds 100 --cpus-per-run 2 --loggers text --write-tuned \
  --out "$R/sweep-regularisers-split_cifar10-class" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies ewc,si,mas --seeds 0 1 2 --ray --loggers text \
  --out "$R/split_cifar10-class" --resume --rerun ewc,si,mas "${extra[@]}"
# ... then their learning rate at the chosen value (0.005 and 0.02 beside the 0.01 above, the same seed): each kept 0.01,
# so the test stream was not read again.
rnf-bench --sweep benchmarks/sweeps/lr-class-regularisers.json --strategies si,lwf,mas,ewc --benchmark split_cifar10 \
  --scenario class --seeds 100 --cpus-per-run 2 --loggers text --out "$R/sweep-lr-regularisers-split_cifar10-class" "${extra[@]}"
# Naive, Replay and Joint: the learning rate on the validation split (3 values, sweep seed 100). Naive kept 0.01;
# Replay's and Joint's test streams were read once at their choice, 0.02.
rnf-bench --sweep benchmarks/sweeps/lr-class.json --strategies naive,replay,joint --benchmark split_cifar10 \
  --scenario class --seeds 100 --cpus-per-run 2 --loggers text --write-tuned \
  --out "$R/sweep-lr-split_cifar10-class" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies replay,joint --seeds 0 1 2 --ray --loggers text \
  --out "$R/split_cifar10-class" --resume --rerun replay,joint "${extra[@]}"
# Task-incremental models keep each task's BatchNorms (task_norms=True, the library's default now) instead of freezing
# BatchNorm channels with their units: on validation splits (seeds 100 and 101) against task_norms=False with the
# small CNN, and with SlimResNet18 beside the running arm of sweep-defaults-frozen-norms-*-slim_resnet18; then the
# task-incremental SplitCIFAR-10 columns read once more (the small CNN's one seed at a time, SlimResNet18's on Ray).
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-task-norms.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task "${new_defaults[@]}" \
  --out "$R/sweep-defaults-task-norms-split_cifar10-task" "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-task-norms-on.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 "${new_defaults[@]}" \
  --out "$R/sweep-defaults-task-norms-split_cifar10-task-slim_resnet18" "${extra[@]}"
# ... and task_norms=False with SlimResNet18 on the same kind of CPU (validation splits): a tie.
rnf-bench --sweep benchmarks/sweeps/rnf-defaults-task-norms-off.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 "${new_defaults[@]}" \
  --out "$R/sweep-defaults-task-norms-off-split_cifar10-task-slim_resnet18" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --strategies rnf --seeds 0 1 2 "${new_defaults[@]}" \
  --loggers text --out "$R/defaults-split_cifar10-task" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --strategies rnf --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-task" --resume --rerun rnf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --model slim_resnet18 --strategies rnf --seeds 0 1 2 \
  "${new_defaults[@]}" --loggers text --ray --out "$R/split_cifar10-task-slim_resnet18" --resume --rerun rnf "${extra[@]}"
# The SlimResNet18 time pair read again with each task's own BatchNorms (the same command as above; the targets
# table takes both its time and its peak memory ratio from it).
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 100 "${new_defaults[@]}" --loggers text --ray \
  --out "$R/time-split_cifar10-task-slim_resnet18" "${extra[@]}"
# A larger share for the earlier tasks on SlimResNet18, task-incremental (capacity_flex=1.5 against the default 1; validation
# splits, seeds 100 and 101, beside sweep-defaults-task-norms-split_cifar10-task-slim_resnet18): level.
rnf-bench --sweep benchmarks/sweeps/rnf-task-flex.json --strategies rnf --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 "${new_defaults[@]}" \
  --out "$R/sweep-task-flex-split_cifar10-task-slim_resnet18" "${extra[@]}"
# A second SlimResNet18 time pair, seed 101, after the one above (the same command; the targets table takes the time and
# peak memory ratios over both pairs, with their spread), then the summary of both.
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 101 "${new_defaults[@]}" --loggers text --ray \
  --out "$R/time-split_cifar10-task-slim_resnet18" --resume "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/memory-defaults.json --strategies naive,rnf --benchmark split_cifar10 --scenario task \
  --model slim_resnet18 --seeds 100 101 "${new_defaults[@]}" --loggers text --ray \
  --out "$R/time-split_cifar10-task-slim_resnet18" --resume "${extra[@]}"
# Is the width each task keeps what holds RNF back on SlimResNet18? RNF at its defaults and Joint with 10 and 30
# channels in the first stage (--width; Avalanche's is 20), and Joint at Avalanche's width, beside RNF's runs in
# sweep-defaults-task-norms-split_cifar10-task-slim_resnet18 (validation splits, seeds 100 and 101): the gap stays.
for w in 10 30; do
  rnf-bench --sweep benchmarks/sweeps/width-reference.json --strategies joint,rnf --seeds 100 101 --loggers text \
    --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 --width "$w" "${new_defaults[@]}" \
    --out "$R/sweep-width-split_cifar10-task-slim_resnet18-width$w" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/width-reference.json --strategies joint --seeds 100 101 --loggers text \
  --no-plots --ray --benchmark split_cifar10 --scenario task --model slim_resnet18 \
  --out "$R/sweep-width-split_cifar10-task-slim_resnet18-joint" "${extra[@]}"
# The class-incremental SlimResNet18 column's EWC, SI and MAS at the values chosen on validation splits for the small
# CNN's class-incremental column (tuned.json's split_cifar10 class values), replacing their runs at the earlier values.
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies ewc,si,mas --seeds 0 1 2 \
  --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18" --resume --rerun ewc,si,mas "${extra[@]}"
# The class-incremental SlimResNet18 column's LwF at the alpha chosen on validation splits for the small CNN's
# class-incremental column (tuned.json's split_cifar10 class value, 1), replacing its runs at 2; Replay at that
# column's learning rate (0.02) in a directory of its own: the column keeps Replay at the benchmark's 0.01.
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies lwf --seeds 0 1 2 \
  --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18" --resume --rerun lwf "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --model slim_resnet18 --strategies replay --seeds 0 1 2 \
  --param replay.lr=0.02 --loggers text --ray --out "$R/split_cifar10-class-slim_resnet18-replay-lr0.02" "${extra[@]}"
# Task recognition with each task's statistics on the units it froze itself only (not also the earlier tasks' units
# it reads), beside the plugin's recogniser: validation splits, seeds 100 and 101 (split_cifar10: seed 100).
# At one thread, as they were run: the scores depend on the thread count (recorded in result.json).
for b in split_mnist split_fmnist; do
  for seed in 100 101; do
    OMP_NUM_THREADS=1 python -m avalanche_rnf.bench.recognizers --benchmark "$b" --seed "$seed" --validation 0.1 \
      --out "$R/recognizers-own-units-$b-validation-seed$seed"
  done
done
OMP_NUM_THREADS=1 python -m avalanche_rnf.bench.recognizers --benchmark split_cifar10 --seed 100 --validation 0.1 \
  --out "$R/recognizers-own-units-split_cifar10-validation-seed100"
# The same with the input pooled to at most 768 values for the pooled LDA (MNIST's 28 x 28 to 14 x 14; CIFAR-10's
# inputs are pooled to 768 values at the default as well): a smaller recogniser, not adopted (docs/results.md).
for b in split_mnist split_fmnist; do
  for seed in 100 101; do
    OMP_NUM_THREADS=1 python -m avalanche_rnf.bench.recognizers --benchmark "$b" --seed "$seed" --validation 0.1 \
      --input-values 768 --out "$R/recognizers-input768-$b-validation-seed$seed"
  done
done
# split_mnist task-incremental with one search budget for every strategy (its key parameter x the learning rates
# 0.005, 0.01 and 0.02; Naive, Replay and Joint the learning rates; sweep seeds 100 and 101), the test stream read
# once at each strategy's best point, and the mechanism steps and defaults again at the column's new values.
rnf-bench --sweep benchmarks/sweeps/split_mnist-task.json --benchmark split_mnist --scenario task --seeds 100 101 \
  --loggers text --out "$R/sweep-split_mnist-task" --write-tuned "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-split_mnist-task-lr.json --strategies rnf --benchmark split_mnist \
  --scenario task --seeds 100 101 --loggers text --out "$R/sweep-split_mnist-task" --resume --write-tuned "${extra[@]}"
swept=naive,ewc,si,lwf,mas,packnet,replay,joint,rnf
rnf-bench --benchmark split_mnist --scenario task --strategies "$swept" --seeds 0 1 2 3 4 --loggers text --ray \
  --out "$R/split_mnist-task" --resume --rerun "$swept" "${extra[@]}"
python -c 'import sys; from avalanche_rnf.bench.mechanism_table import commands
print("\n".join(commands("split_mnist-task", "0 1 2 3 4", sys.argv[1])))' "$R" | while read -r cmd; do
  eval "$cmd" --ray --resume --rerun rnf '"${extra[@]}"' < /dev/null
done
# The same on split_fmnist task-incremental (RNF in the same sweep file), and its defaults row at the column's values.
rnf-bench --sweep benchmarks/sweeps/split_fmnist-task.json --benchmark split_fmnist --scenario task --seeds 100 101 \
  --loggers text --out "$R/sweep-split_fmnist-task" --write-tuned "${extra[@]}"
rnf-bench --benchmark split_fmnist --scenario task --strategies "$swept" --seeds 0 1 2 3 4 --loggers text --ray \
  --out "$R/split_fmnist-task" --resume --rerun "$swept" "${extra[@]}"
python -m avalanche_rnf.bench.defaults_table "$R" | grep -- "--benchmark split_fmnist --scenario task" | \
  while read -r cmd; do
    eval "$cmd" --ray --resume --rerun rnf '"${extra[@]}"' < /dev/null
  done
# PackNet in every headline column: where it cannot run (no task labels, or BatchNorm in the model) the run records why.
rnf-bench --benchmark split_fmnist --scenario class --strategies packnet --seeds 0 1 2 3 4 --loggers text \
  --out "$R/split_fmnist-class" --resume "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario class --strategies packnet --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-class" --resume "${extra[@]}"
for s in task class; do
  rnf-bench --benchmark split_cifar10 --scenario "$s" --model slim_resnet18 --strategies packnet --seeds 0 1 2 \
    --loggers text --out "$R/split_cifar10-$s-slim_resnet18" --resume --rerun packnet "${extra[@]}"
done
rnf-bench --benchmark split_cifar10 --scenario task --strategies packnet --seeds 0 1 2 --loggers text \
  --out "$R/split_cifar10-task" --resume --rerun packnet "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --strategies packnet --seeds 0 1 2 --explain --loggers text \
  --out "$R/explain-split_cifar10-task" --resume --rerun packnet "${extra[@]}"
# permuted_mnist domain-incremental under one search budget for every strategy (its key parameter x the learning
# rates 0.005, 0.01 and 0.02; one sweep seed), the test stream read again for the strategies whose values changed.
# RNF's three max_drop values tie (identical runs): --write-tuned keeps the value it ran with (0.002) on an exact tie.
rnf-bench --sweep benchmarks/sweeps/permuted_mnist-domain.json --benchmark permuted_mnist --scenario domain \
  --seeds 100 --loggers text --write-tuned --out "$R/sweep-permuted_mnist-domain" "${extra[@]}"
changed=naive,ewc,lwf,joint
rnf-bench --benchmark permuted_mnist --scenario domain --strategies "$changed" --seeds 0 1 2 3 4 --loggers text \
  --ray --out "$R/permuted_mnist-domain" --resume --rerun "$changed" "${extra[@]}"
# split_cifar10 task-incremental under one search budget: three points per strategy (its key parameter at the
# benchmark's learning rate; Naive, Replay and Joint the learning rate), one sweep seed. Replay and Joint chose 0.02
# and were read again on the test stream; RNF's max_drop 0.001 and 0.002 tie and the 0.002 it ran with is kept.
rnf-bench --sweep benchmarks/sweeps/split_cifar10-task.json --benchmark split_cifar10 --scenario task --seeds 100 \
  --ray --loggers text --write-tuned --out "$R/sweep-split_cifar10-task" "${extra[@]}"
rnf-bench --benchmark split_cifar10 --scenario task --strategies replay,joint --seeds 0 1 2 --ray --loggers text \
  --out "$R/split_cifar10-task" --resume --rerun replay,joint "${extra[@]}"
# The class-incremental columns' RNF under the budget of their EWC, SI, LwF and MAS, from the library's defaults
# (the --param values below are those defaults, which the harness would otherwise override): split_mnist and
# split_fmnist 3 max_drop values x 3 learning rates (sweep seeds 100 and 101); split_cifar10 the 3 values at the
# benchmark's learning rate, then the learning rate at the chosen one (seed 100). The chosen points are in
# tuned.json; each column's test stream was read once with them.
from_defaults=(--param rnf.keep_last=auto --param rnf.retrain_epochs=0.9 --param rnf.retrain_lr_scale=2.0
               --param rnf.reference_size=300)
for b in split_mnist split_fmnist; do
  rnf-bench --sweep benchmarks/sweeps/rnf-class.json --benchmark "$b" --scenario class --strategies rnf \
    --seeds 100 101 "${from_defaults[@]}" --param rnf.task_inference=auto --loggers text --no-plots --ray \
    --out "$R/sweep-rnf-$b-class" "${extra[@]}"
done
rnf-bench --sweep benchmarks/sweeps/rnf-class-key.json --benchmark split_cifar10 --scenario class --strategies rnf \
  --seeds 100 "${from_defaults[@]}" --param rnf.task_inference=auto --loggers text --no-plots --ray \
  --out "$R/sweep-rnf-split_cifar10-class" "${extra[@]}"
rnf-bench --sweep benchmarks/sweeps/rnf-class-lr.json --benchmark split_cifar10 --scenario class --strategies rnf \
  --seeds 100 "${from_defaults[@]}" --param rnf.task_inference=auto --loggers text --no-plots --ray \
  --out "$R/sweep-rnf-lr-split_cifar10-class" "${extra[@]}"
for b in split_mnist split_fmnist; do
  rnf-bench --benchmark "$b" --scenario class --strategies rnf --seeds 0 1 2 3 4 --loggers text \
    --out "$R/$b-class" --resume --rerun rnf "${extra[@]}"
done
rnf-bench --benchmark split_cifar10 --scenario class --strategies rnf --seeds 0 1 2 --ray --loggers text \
  --out "$R/split_cifar10-class" --resume --rerun rnf "${extra[@]}"
# split_digits and split_fmnist task: RNF's search repeated from the library's defaults with the same budget (its
# max_drop x the column's learning rates, sweep seeds 100 and 101); both chose the defaults themselves, and the
# column's RNF was read once with them (the same runs as the defaults rows; split_fmnist's defaults row read again at
# the benchmark's learning rate, now the column's).
for b in split_digits split_fmnist; do
  rnf-bench --sweep "benchmarks/sweeps/rnf-$b-task.json" --benchmark "$b" --scenario task --strategies rnf \
    --seeds 100 101 "${from_defaults[@]}" --loggers text --no-plots --ray --out "$R/sweep-rnf-$b-task" "${extra[@]}"
  rnf-bench --benchmark "$b" --scenario task --strategies rnf --seeds 0 1 2 3 4 --loggers text --out "$R/$b-task" \
    --resume --rerun rnf "${extra[@]}"
done
rnf-bench --benchmark split_fmnist --scenario task --strategies rnf --seeds 0 1 2 3 4 "${from_defaults[@]}" \
  --param rnf.max_drop=null --loggers text --out "$R/defaults-split_fmnist-task" --resume --rerun rnf "${extra[@]}"
