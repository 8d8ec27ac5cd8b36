"""The recogniser comparison (``python -m avalanche_rnf.bench.recognizers``) on a small stream."""

from __future__ import annotations


def test_recognizer_comparison_scores_every_feature_set(tmp_path):
    import json

    from avalanche_rnf.bench import recognizers

    assert recognizers.main(["--benchmark", "split_digits", "--seed", "0", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "result.json").read_text())["results"]
    names = {name.rsplit(" | ", 1)[0] for name in results}
    assert {name.rsplit(" | ", 1)[1] for name in results} == {"last", "all", "input", "all+input"}
    assert "max logit | all" not in results and "max logit | last" in results  # logits do not depend on features
    assert results["Mahalanobis, shrinkage 0.3 | input"] != results["Mahalanobis, shrinkage 0.3 | all"]
    assert all(0 <= v["task_recognised"] <= 1 for v in results.values()) and len(names) == 36
    fitted = "Mahalanobis, shrinkage 0.01, standardised per task, features ** 1.0"  # the plugin's recogniser
    plain = "Mahalanobis, shrinkage 0.01, standardised per task | all"
    assert {k: v for k, v in results[f"{fitted}, 3000 samples | all"].items() if k != "kib"} == results[plain]
    own = results[f"{fitted}, 3000 samples, each task's own units only | all"]  # not the earlier tasks' units
    assert 0 < own["kib"] < results[f"{fitted}, 3000 samples | all"]["kib"]
    assert f"{fitted}, all training samples, task posterior 1.0 | all" in results
    assert not any("mirror" in name for name in names)  # digits are not images
    best = "Mahalanobis, shrinkage 0.01, standardised per task"
    assert results[f"{best} | all"]["task_recognised"] > results["max logit | last"]["task_recognised"]
    assert results[f"{best}, features ** 0.5 | all"] != results[f"{best} | all"]
    soft = results[f"{best}, task posterior 1.0 | all"]
    assert soft["task_recognised"] == results[f"{best} | all"]["task_recognised"]
    assert "| recogniser | features" in (tmp_path / "result.md").read_text()
    # the input's pooled LDA alone is the joint recogniser at weight 0 (digits: the input needs no pooling)
    pooled = results["LDA, covariance pooled over tasks, shrinkage 0.01 | input"]
    joint = {(units, weight): results[f"per-task scores{units} x {weight} + pooled LDA task log-posterior | all+input"]
             for units in ("", ", each task's own units only") for weight in (0.0, 4.0)}
    scores = {key: {k: v for k, v in row.items() if k != "kib"} for key, row in joint.items()}
    assert scores["", 0.0] == pooled == scores[", each task's own units only", 0.0]  # the pooled LDA alone
    assert scores["", 4.0] != pooled
    assert joint[", each task's own units only", 4.0]["kib"] < joint["", 4.0]["kib"]


def test_recognizer_comparison_on_a_validation_split(tmp_path):
    import json

    from avalanche_rnf import pooled
    from avalanche_rnf.bench import recognizers

    assert recognizers.main(["--benchmark", "split_digits", "--validation", "0.2", "--input-values", "32",
                             "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["validation"] == 0.2 and saved["input_values"] == 32
    assert pooled.INPUT_VALUES == 1024  # the default again after the run
    text = (tmp_path / "result.md").read_text()
    assert "validation split, 20% of the training data" in text and "average-pooled to at most 32" in text
