"""Per-layer sparsity grouped by the layer's role in the network (the paper's Figures 2 and 4).

Roles come from the layer names the harness' models give (``paper/models``):

- ResNet: ``stem`` (the 7×7 ``initial_conv``), ``1x1`` and ``3x3`` convolutions of the blocks
  (bottleneck blocks, depth ≥ 50: ``conv1`` and ``conv3`` are 1×1, ``conv2`` 3×3; basic blocks:
  both 3×3), ``projection`` (the 1×1 shortcut convolutions) and ``fc`` (``final_dense``).
- Transformer: ``embedding`` (the shared embedding / softmax), ``attention q`` / ``k`` / ``v`` /
  ``output`` (self- and cross-attention alike) and ``ffn in`` / ``ffn out``.

``by_role`` sums a sparsity report's rows (``sparsity_report(model).to_dict()["layers"]``, as
``results.json`` holds them) per role: sparsity = 1 − non-zeros / weights of the role's tensors.
"""

from __future__ import annotations

import re

__all__ = ["BOTTLENECK_DEPTHS", "RESNET_ROLES", "TRANSFORMER_ROLES", "by_role", "role"]

BOTTLENECK_DEPTHS = (50, 101, 152, 200)  # as models/resnet.BLOCKS
RESNET_ROLES = ("stem", "1x1", "3x3", "projection", "fc")
TRANSFORMER_ROLES = (
    "embedding",
    "attention q",
    "attention k",
    "attention v",
    "attention output",
    "ffn in",
    "ffn out",
)

_BLOCK_CONV = re.compile(r"group\d+_block\d+_conv(\d)")
_ATTENTION = {
    "query": "attention q",
    "key": "attention k",
    "value": "attention v",
    "attention_output": "attention output",
}


def role(benchmark: str, name: str, resnet_depth: int = 50) -> str:
    """The role of the layer ``name`` of a ``benchmark`` ("resnet50", "transformer") model;
    ``ValueError`` for a name the model does not use."""
    if benchmark == "resnet50":
        if name == "initial_conv":
            return "stem"
        if name == "final_dense":
            return "fc"
        if re.fullmatch(r"group\d+_block\d+_proj", name):
            return "projection"
        match = _BLOCK_CONV.fullmatch(name)
        if match:
            bottleneck = resnet_depth in BOTTLENECK_DEPTHS
            return "3x3" if not bottleneck or match.group(1) == "2" else "1x1"
    elif benchmark == "transformer":
        if name == "shared_embedding":
            return "embedding"
        if re.fullmatch(r"(en|de)coder_\d+_ffn_1", name):
            return "ffn in"
        if re.fullmatch(r"(en|de)coder_\d+_ffn_2", name):
            return "ffn out"
        match = re.fullmatch(r"(en|de)coder_\d+_(self|cross)_attention/(\w+)", name)
        if match and match.group(3) in _ATTENTION:
            return _ATTENTION[match.group(3)]
    raise ValueError(f"{name!r} is not a sparsified layer of the paper's {benchmark} model.")


def by_role(benchmark: str, layers, resnet_depth: int = 50) -> list[dict]:
    """``[{"role", "tensors", "weights", "nonzeros", "sparsity"}]`` over the report rows
    ``layers``, in the order of ``RESNET_ROLES`` / ``TRANSFORMER_ROLES``, roles with no tensor
    left out."""
    order = RESNET_ROLES if benchmark == "resnet50" else TRANSFORMER_ROLES
    totals = {name: [0, 0, 0] for name in order}
    for layer in layers:
        total = totals[role(benchmark, layer["name"], resnet_depth)]
        total[0] += 1
        total[1] += int(layer["weights"])
        total[2] += int(layer["nonzeros"])
    return [
        {
            "role": name,
            "tensors": tensors,
            "weights": weights,
            "nonzeros": nonzeros,
            "sparsity": 1.0 - nonzeros / weights,
        }
        for name, (tensors, weights, nonzeros) in totals.items()
        if weights
    ]
