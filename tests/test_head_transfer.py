"""``head_transfer=False``: a task's head reads only the units that were free when its task came."""

from __future__ import annotations

import pytest
import torch

from avalanche_rnf import RNF, Relevance, Retraining, RNFPlugin, TopFraction
from helpers import (
    IncrementalMLP,
    MultiHeadConvBN,
    MultiHeadMLP,
    assert_kept,
    experience_logits,
    frozen_snapshot,
    naive,
    tolerant_rnf,
)

BELOW = "features.3"  # the hidden layer the heads read


def _head(task: int) -> str:
    return f"classifier.classifiers.{task}.classifier.weight"


def _run(bench, experiences, head_transfer, retraining=None):
    """Train a multi-head MLP with RNF on ``experiences``; per experience, the units of ``BELOW``
    frozen before it, a snapshot of the frozen values after it, and the model's state after it."""
    torch.manual_seed(0)
    model = MultiHeadMLP(hidden=32)
    plugin = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=100),
                       head_transfer=head_transfer, retraining=retraining)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    strategy = naive(model, optimizer, [plugin], train_mb_size=16, train_epochs=2)
    before, snapshots, states = [], [], []
    for k in experiences:
        before.append(plugin.freeze.frozen_units(BELOW, 32).clone())
        strategy.train(bench.train_stream[k])
        snapshots.append(frozen_snapshot(plugin, model))
        states.append({name: value.clone() for name, value in model.state_dict().items()})
    return plugin, model, before, snapshots, states


def _train_on(model, plugin, experience):
    """One more experience for ``model`` with ``plugin``, on a fresh SGD with momentum."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    naive(model, optimizer, [plugin], train_mb_size=16, train_epochs=2).train(experience)


@pytest.mark.parametrize("retraining", [None, Retraining(1)], ids=["no-retraining", "retraining"])
def test_a_head_reads_none_of_the_units_frozen_before_its_task(digits_til, retraining):
    plugin, model, before, snapshots, states = _run(digits_til, [0, 1, 2], False, retraining)
    for task in (1, 2):
        weight = states[-1][_head(task)]
        frozen_before = before[task]
        assert frozen_before.any()
        assert torch.count_nonzero(weight[:, frozen_before]) == 0
        after = before[task + 1] if task < 2 else plugin.freeze.unit_masks[BELOW]
        own = after & ~frozen_before  # the units the task froze itself: its head reads them
        assert own.any() and torch.count_nonzero(weight[:, own]) > 0
    assert_kept(snapshots[0], snapshots[-1])  # earlier tasks are still kept exactly
    # with transfer (the default) the same heads do read the earlier tasks' units
    _, _, before_t, _, states_t = _run(digits_til, [0, 1, 2], True, retraining)
    assert torch.count_nonzero(states_t[-1][_head(2)][:, before_t[2]]) > 0


def test_a_task_keeps_its_outputs_and_its_head_its_zeros(digits_til):
    """The task's outputs do not move after it finishes, and its head's cut weights stay zero when
    later tasks train (its head is frozen whole, zeros included)."""
    plugin, model, before, _, states = _run(digits_til, [0, 1], False)
    logits = experience_logits(model, digits_til.test_stream[1])
    torch.manual_seed(1)
    _train_on(model, plugin, digits_til.train_stream[2])
    assert torch.equal(experience_logits(model, digits_til.test_stream[1]), logits)
    assert torch.count_nonzero(model.state_dict()[_head(1)][:, before[1]]) == 0


def test_a_returning_task_still_reads_none_of_the_units_frozen_before_it_first_came(digits_til):
    plugin, _, before, _, states = _run(digits_til, [0, 1, 1], False)
    assert not torch.equal(states[1][_head(1)], states[2][_head(1)])  # its head trained again
    assert torch.equal(plugin.unread[_head(1).removesuffix(".weight")], before[1])
    assert torch.count_nonzero(states[2][_head(1)][:, before[1]]) == 0
    # it still reads the units it froze on its first visit
    own = before[2] & ~before[1]
    assert own.any() and torch.count_nonzero(states[2][_head(1)][:, own]) > 0


def test_the_unread_units_survive_a_state_dict_round_trip(digits_til):
    plugin, *_ = _run(digits_til, [0, 1], False)
    copy = RNFPlugin(head_transfer=False)
    copy.load_state_dict(plugin.state_dict())
    assert copy.unread.keys() == plugin.unread.keys() and plugin.unread
    for name, unread in plugin.unread.items():
        assert torch.equal(copy.unread[name], unread)


def test_head_transfer_is_checked_and_passed_through():
    with pytest.raises(ValueError, match="head_transfer must be True or False"):
        RNFPlugin(head_transfer="no")
    model = MultiHeadMLP(hidden=16)
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), head_transfer=False)
    assert strategy.rnf.heads.transfer is False


def test_head_transfer_off_without_task_heads_is_a_clear_error(digits_cil):
    model = IncrementalMLP()
    plugin = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=50), head_transfer=False)
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.1), [plugin], train_mb_size=16)
    with pytest.raises(ValueError, match="MultiHeadClassifier"):
        strategy.train(digits_cil.train_stream[0])


def test_a_restored_plugin_still_cuts_a_returning_head(digits_til):
    plugin, model, before, _, _ = _run(digits_til, [0, 1], False)
    restored = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=100), head_transfer=False)
    restored.load_state_dict(plugin.state_dict())
    _train_on(model, restored, digits_til.train_stream[1])
    weight = model.state_dict()[_head(1)]
    assert torch.count_nonzero(weight[:, before[1]]) == 0
    assert torch.count_nonzero(weight[:, ~before[1]]) > 0


def test_switching_head_transfer_off_cuts_only_what_was_frozen_before_the_task_came(digits_til):
    plugin, model, before, _, states = _run(digits_til, [0, 1], True)
    assert torch.count_nonzero(states[-1][_head(1)][:, before[1]]) > 0  # it read them while transfer was on
    plugin.heads.transfer = False
    _train_on(model, plugin, digits_til.train_stream[1])
    weight = model.state_dict()[_head(1)]
    assert torch.count_nonzero(weight[:, before[1]]) == 0
    own = plugin.freeze.unit_masks[BELOW] & ~before[1]
    assert torch.count_nonzero(weight[:, own]) > 0


def test_a_state_without_the_record_warns_when_its_head_returns(digits_til):
    plugin, model, *_ = _run(digits_til, [0, 1], True)
    state = plugin.state_dict()
    del state["unread"]  # as saved before head_transfer existed
    old = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=100), head_transfer=False)
    old.load_state_dict(state)
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.1), [old], train_mb_size=16)
    with pytest.warns(UserWarning, match="does not say which units were frozen"):
        strategy.train(digits_til.train_stream[1])


def test_the_search_and_a_conv_net_with_batchnorm_keep_the_cut(digits_til_images):
    """With ``max_drop`` the search scores the sub-network the head is frozen with; conv channels feed
    the heads through BatchNorm, pooling and flatten."""
    torch.manual_seed(0)
    model = MultiHeadConvBN()
    strategy = tolerant_rnf(model, head_transfer=False, retraining=Retraining(1))
    below = "features.8"
    before = []
    for exp in digits_til_images.train_stream[:3]:
        before.append(strategy.rnf.freeze.frozen_units(below, 32).clone())
        strategy.train(exp)
    assert len(strategy.rnf.searches) == 3
    assert all(r.retrained_accuracy is not None for r in strategy.rnf.searches)
    for task in (1, 2):
        weight = model.state_dict()[_head(task)]
        assert before[task].any() and torch.count_nonzero(weight[:, before[task]]) == 0
        assert torch.count_nonzero(weight[:, ~before[task]]) > 0


class _ConcatHeads(MultiHeadMLP):
    """Two hidden layers side by side, concatenated in front of the task heads."""

    def __init__(self):
        super().__init__(hidden=32)
        self.left, self.right = torch.nn.Linear(64, 12), torch.nn.Linear(64, 20)

    def forward(self, x, task_labels):
        x = x.flatten(1)
        return self.classifier(torch.relu(torch.cat([self.left(x), self.right(x)], 1)), task_labels)


def test_a_head_reading_a_concatenation_reads_none_of_either_part_s_earlier_units(digits_til):
    torch.manual_seed(0)
    model = _ConcatHeads()
    del model.features  # unused
    plugin = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=100), head_transfer=False)
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), [plugin],
                     train_mb_size=16, train_epochs=2)
    for k in range(3):
        before = torch.cat([plugin.freeze.frozen_units("left", 12), plugin.freeze.frozen_units("right", 20)])
        strategy.train(digits_til.train_stream[k])
    weight = model.state_dict()[_head(2)]
    assert before[:12].any() and before[12:].any()
    assert torch.count_nonzero(weight[:, before]) == 0  # both parts' earlier units are cut off task 2's head
    assert torch.count_nonzero(weight[:, ~before]) > 0
