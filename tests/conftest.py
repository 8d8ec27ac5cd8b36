"""Fixtures: the split-digits benchmark (no download needed)."""

import pytest

from avalanche_rnf.bench.split_digits import SplitDigits


@pytest.fixture
def digits_til():
    return SplitDigits(5, return_task_id=True, seed=0)


@pytest.fixture
def digits_til_images():
    return SplitDigits(5, return_task_id=True, seed=0, image=True)


@pytest.fixture
def digits_cil():
    return SplitDigits(5, return_task_id=False, seed=0)
