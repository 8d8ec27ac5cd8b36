"""The harness on images: ImageFolder and CIFAR-10 loading, its errors, and the --model option (SlimResNet18)."""

from __future__ import annotations

import tarfile

import pytest
import torch
from PIL import Image
from torch import nn

from avalanche_rnf.bench.data import DataNotFoundError
from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.imagefolder import cifar10_tensors, imagefolder_tensors
from avalanche_rnf.bench.models import make_model
from avalanche_rnf.bench.runner import RunSpec, run
from avalanche_rnf.bench.streams import build_stream


def _image_tree(root, classes=("a", "b", "c", "d"), per_class=3, size=10):
    for split in ("train", "test"):
        for i, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(per_class):
                Image.new("RGB", (size, size), (40 * i, 10 * k, 200)).save(folder / f"{k}.png")


def test_imagefolder_loads_resizes_and_caches(tmp_path):
    _image_tree(tmp_path)
    train, test, mean, std = imagefolder_tensors(tmp_path, image_size=8)
    assert train.tensors[0].shape == (12, 3, 8, 8) and train.tensors[0].dtype == torch.uint8
    assert train.classes == ["a", "b", "c", "d"] and train.targets.count(3) == 3
    assert len(mean) == 3 and std[2] == 1.0  # the blue channel is constant: no division by zero
    assert len(list(tmp_path.glob("*.rnf-cache-8.pt"))) == 2
    again = imagefolder_tensors(tmp_path, image_size=8)[0]
    assert torch.equal(again.tensors[0], train.tensors[0])


def test_imagefolder_benchmark_runs_class_incremental(tmp_path):
    _image_tree(tmp_path)
    stream = build_stream("imagefolder", "class", root=tmp_path, n_experiences=2, image_size=8)
    assert stream.n_outputs == 4 and stream.input_shape == (3, 8, 8)
    record = run(RunSpec("rnf", strategy_params("rnf", "imagefolder", "class"),
                         TRAINING["imagefolder"], seed=0), stream, raise_errors=True)
    assert len(record.matrix) == 2 and record.frozen_fractions


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_slim_resnet18_runs_in_the_harness(tmp_path, scenario):
    from dataclasses import replace

    from avalanche.models.slim_resnet18 import ResNet

    _image_tree(tmp_path, per_class=2)
    stream = build_stream("imagefolder", scenario, root=tmp_path, n_experiences=2, image_size=32)
    training = replace(TRAINING["imagefolder"], model="slim_resnet18", epochs=1)
    assert training.as_dict()["model"] == "slim_resnet18" and "model" not in TRAINING["imagefolder"].as_dict()
    model = make_model("image", stream.input_shape, stream.n_outputs, scenario == "task", name=training.model)
    assert any(isinstance(m, ResNet) for m in model.modules())
    record = run(RunSpec("rnf", strategy_params("rnf", "imagefolder", scenario), training, seed=0), stream,
                 raise_errors=True)
    assert len(record.matrix) == 2 and record.config["training"]["model"] == "slim_resnet18"
    assert 0 < record.frozen_fractions[-1]["all"] <= 1
    with pytest.raises(ValueError, match="slim_resnet18 needs 3x32x32 RGB images"):
        make_model("mnist", (1, 28, 28), 10, False, name="slim_resnet18")
    with pytest.raises(ValueError, match="unknown model 'resnet1'"):
        make_model("image", (3, 8, 8), 10, False, name="resnet1")


def test_model_option_names_the_run_and_needs_rgb_images():
    from avalanche_rnf.bench.arguments import build_parser
    from avalanche_rnf.bench.planning import make_plan

    args = build_parser().parse_args(["--benchmark", "split_cifar10", "--model", "slim_resnet18", "--strategies",
                                      "naive"])
    made = make_plan(args)
    assert made["name"] == "split_cifar10-task-slim_resnet18"
    assert all(spec.training.model == "slim_resnet18" for spec in made["specs"])
    with pytest.raises(ValueError, match="--model slim_resnet18 trains on RGB images"):
        make_plan(build_parser().parse_args(["--benchmark", "split_mnist", "--model", "slim_resnet18"]))


def test_width_and_hidden_size_options_narrow_the_small_cnn():
    from avalanche_rnf.bench.arguments import build_parser
    from avalanche_rnf.bench.planning import make_plan

    parse = build_parser().parse_args
    made = make_plan(parse(["--benchmark", "split_cifar10", "--width", "8", "--hidden-size", "64", "--strategies",
                            "naive,rnf"]))
    assert {(spec.training.width, spec.training.hidden_size) for spec in made["specs"]} == {(8, 64)}
    model = make_model("image", (3, 32, 32), 10, False, width=8, hidden_size=64)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16]
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [64, 10]
    with pytest.raises(ValueError, match="--width sets the small CNN's or SlimResNet18's channels; split_mnist"):
        make_plan(parse(["--benchmark", "split_mnist", "--width", "8"]))


def test_width_sets_slim_resnet18_s_first_stage_and_names_the_run_after_it():
    from avalanche_rnf.bench.arguments import build_parser
    from avalanche_rnf.bench.planning import make_plan

    parse = build_parser().parse_args
    made = make_plan(parse(["--benchmark", "split_cifar10", "--model", "slim_resnet18", "--width", "10",
                            "--strategies", "naive"]))
    assert made["name"] == "split_cifar10-task-slim_resnet18-width10"
    training = made["specs"][0].training
    assert (training.slim_width, training.width) == (10, 32) and training.as_dict()["slim_width"] == 10
    default = make_plan(parse(["--benchmark", "split_cifar10", "--model", "slim_resnet18", "--strategies", "naive"]))
    assert "slim_width" not in default["specs"][0].training.as_dict()  # the runs before the option keep their keys
    model = make_model("image", (3, 32, 32), 10, True, name="slim_resnet18", slim_width=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == 10 and max(c.out_channels for c in convs) == 80
    assert max(c.out_channels for c in make_model("image", (3, 32, 32), 10, True, name="slim_resnet18").modules()
               if isinstance(c, nn.Conv2d)) == 160
    with pytest.raises(ValueError, match="--preset si-pmnist fixes its network"):
        make_plan(parse(["--preset", "si-pmnist", "--hidden-size", "64"]))
    with pytest.raises(ValueError, match="--hidden-size must be a positive number of units, got 0"):
        make_plan(parse(["--benchmark", "split_mnist", "--hidden-size", "0"]))


def test_imagefolder_classes_that_do_not_divide_evenly(tmp_path):
    _image_tree(tmp_path, classes=("a", "b", "c", "d", "e"), per_class=2)
    stream = build_stream("imagefolder", "task", root=tmp_path, n_experiences=2, image_size=8)
    sizes = sorted(len(e.classes_in_this_experience) for e in stream.benchmark.train_stream)
    assert sizes == [2, 3] and stream.n_outputs == 3


def test_imagefolder_missing_split_names_what_it_expected(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataNotFoundError, match="did not find test/"):
        imagefolder_tensors(tmp_path)


def test_cifar10_from_the_archived_imagefolder_copy(tmp_path):
    tree = tmp_path / "src" / "cifar10-jpg"
    _image_tree(tree, classes=tuple(f"c{i}" for i in range(10)), per_class=1, size=32)
    with tarfile.open(tmp_path / "cifar10-jpg.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname="cifar10-jpg")
    train, test, _, _ = cifar10_tensors(tmp_path)
    assert train.tensors[0].shape == (10, 3, 32, 32) and (tmp_path / "cifar10-jpg" / "train").is_dir()


def test_cifar10_missing_lists_the_three_accepted_layouts(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        cifar10_tensors(tmp_path)
    text = str(error.value)
    assert str(tmp_path.resolve()) in text
    assert "cifar-10-batches-py" in text and "cifar10-jpg/train" in text and "cifar10-jpg.tar.gz" in text
