"""``TaskInference(views="auto")``: recognition averages each image with its mirror image exactly where
the training transforms mirror images."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
from avalanche.benchmarks import nc_benchmark
from torch import nn

from avalanche_rnf import RNF, Relevance, TaskInference
from avalanche_rnf.bench.split_digits import digits_datasets
from avalanche_rnf.glue import mirrors_images
from avalanche_rnf.recognition import horizontal_flip
from helpers import quiet_evaluator

FLIP, CROP = T.Compose([T.RandomHorizontalFlip()]), T.Compose([T.RandomCrop(8, padding=1)])


def _digits(train_transform):
    train, test = digits_datasets(image=True, seed=0)
    return nc_benchmark(train, test, 5, task_labels=False, seed=0, train_transform=train_transform,
                        eval_transform=None)


@pytest.mark.parametrize("transform, mirrored", [(FLIP, True), (T.Compose([CROP, FLIP]), True), (CROP, False),
                                                 (None, False)])
def test_mirrored_training_is_found_through_avalanche_datasets_and_composed_transforms(transform, mirrored):
    stream = _digits(transform)
    train = stream.train_stream[1].dataset
    for dataset in (train, train.eval(), train.subset([0, 1, 2]), train.concat(stream.train_stream[2].dataset)):
        assert mirrors_images(dataset) is mirrored
    assert mirrors_images(stream.test_stream[0].dataset.eval()) is mirrored  # its training group is read


def _trained(transform, views="auto", experiences=2):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 32),
                          nn.ReLU(), nn.Linear(32, 10))
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                   relevance=Relevance(reference_size=50), task_inference=TaskInference(views=views),
                   train_mb_size=32, train_epochs=1, eval_mb_size=256, evaluator=quiet_evaluator())
    for experience in _digits(transform).train_stream[:experiences]:
        strategy.train(experience)
    return strategy


def test_auto_views_mirror_where_training_mirrors_and_survive_a_checkpoint():
    mirrored, plain = _trained(FLIP), _trained(CROP)
    assert mirrored.rnf.inference.views == [horizontal_flip] and plain.rnf.inference.views == []
    assert _trained(FLIP, views=[]).rnf.inference.views == []  # asked for none
    for strategy, expected in ((mirrored, [horizontal_flip]), (plain, [])):
        fresh = _trained(None, experiences=0)  # not yet settled: the checkpoint settles it
        fresh.rnf.load_state_dict(strategy.rnf.state_dict())
        assert fresh.rnf.inference.views == expected
    first = mirrored.rnf.recognizer.tasks[0]
    unmirrored = _trained(FLIP, views=[]).rnf.recognizer.tasks[0]
    assert not torch.allclose(first.means, unmirrored.means)  # the statistics were fitted on averaged features
