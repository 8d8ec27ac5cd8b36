"""Fixtures: the split-digits benchmark (no download needed)."""

import pytest
import torch

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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
