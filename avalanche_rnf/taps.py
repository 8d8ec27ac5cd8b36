"""Which features recognise a task: the layers whose inputs a :class:`~avalanche_rnf.recognition.FeatureTap` reads.

``"last"``: the output layer's input; ``"all"``: the input of every layer that its units feed;
``"input"``: what the first unit layer reads (the model's input when that layer comes first),
shared by every task; ``"all+input"``: ``"all"`` and the first layer's input values
(:func:`~avalanche_rnf.pooled.input_values`) for :class:`~avalanche_rnf.pooled.JointRecognizer`.
"""

from __future__ import annotations

from torch import nn

from avalanche_rnf.isolation import unit_sources
from avalanche_rnf.layers import UnitLayer, n_inputs, n_units
from avalanche_rnf.pooled import input_values
from avalanche_rnf.recognition import Tap


def recognition_taps(model: nn.Module, layers: list[UnitLayer], which: str) -> list[Tap]:
    """The layers whose inputs recognise a task (``which``: ``TaskInference.layers``), with the units feeding them."""
    sources = unit_sources(model, layers, set())
    output = layers[-1].name
    last = sources[output]
    if last is None:
        raise ValueError("task_inference needs a hidden layer in front of the output layer")
    first = layers[0].name
    if which == "input":
        return [Tap(first, None, n_inputs(model.get_submodule(first)))]
    # a tap reads a layer's input: inputs concatenated from several layers are left out, so units that only
    # feed concatenations take no part in recognition
    fed = {name: source.layer for name, source in sources.items() if source is not None and not source.more}
    if which == "last":
        last.only(output)
    names = [output] if which == "last" else [layer.name for layer in layers if layer.name in fed]
    own = [Tap(n, fed[n], n_units(model.get_submodule(fed[n]))) for n in names]
    if which != "all+input":
        return own
    return own + [Tap(first, None, n_inputs(model.get_submodule(first)), read=input_values)]
