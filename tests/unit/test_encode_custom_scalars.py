"""add_custom_scalars*: ``convert_plugins`` then ``encode_plugins``, against torch's.

``convert_plugins`` in the trainer, a round trip through the ring's encoding
(msgpack params, raw arrays read back read-only) and ``encode_plugins`` in the
daemon must give the Summaries torch 2.13's own summary functions give, byte
for byte, with the same stdout and warnings (helpers in
``encode_plugins_helpers.py``); a golden file pins representative cases.

Covered here: layouts of every shape torch accepts (decoded and compared), and
the chart helpers (``add_custom_scalars_multilinechart`` and
``add_custom_scalars_marginchart``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from torch.utils.tensorboard import summary as tb_summary

from summaryd import convert_plugins
from summaryd.daemon import encode_plugins

from ..transport import through_ring  # noqa: E402
from .encode_plugins_helpers import _run, assert_golden, assert_same_outcome

# -- custom scalars ------------------------------------------------------------------------


def _gen(items: list[Any]) -> Any:
    return (i for i in items)


LAYOUTS: dict[str, Callable[[], Any]] = {
    "doc-example": lambda: {
        "Taiwan": {"twse": ["Multiline", ["twse/0050", "twse/2330"]]},
        "USA": {
            "dow": ["Margin", ["dow/aaa", "dow/bbb", "dow/ccc"]],
            "nasdaq": ["Margin", ["nasdaq/aaa", "nasdaq/bbb", "nasdaq/ccc"]],
        },
    },
    "empty": lambda: {},
    "empty-category": lambda: {"A": {}},
    "ordered": lambda: OrderedDict(b={"t": ["Multiline", ["x"]]}, a={"u": ["Multiline", []]}),
    "bytes-names": lambda: {b"A": {b"t": ["Margin", [b"a", "b", np.bytes_(b"c")]]}},
    "none-names": lambda: {None: {None: ["Margin", [None, "b", None]]}},
    "unicode": lambda: {"ü/日本": {"τ": ["Multiline", ["loss/ü", "a\0b"]]}},
    "spec-str": lambda: {"A": {"t": "Margin"}},
    "spec-tuple": lambda: {"A": {"t": ("Multiline", ("a", "b"))}},
    "spec-dict": lambda: {"A": {"t": {0: "Margin", 1: ["a", "b", "c"]}}},
    "kind-other": lambda: {"A": {"t": ["foo", ["a"]]}},
    "kind-int": lambda: {"A": {"t": [5, ["a"]]}},
    "kind-np-str": lambda: {"A": {"t": [np.str_("Margin"), ["a", "b", "c"]]}},
    "margin-str": lambda: {"A": {"t": ["Margin", "abc"]}},
    "margin-dict": lambda: {"A": {"t": ["Margin", {0: "a", 1: "b", 2: "c"}]}},
    "multiline-str": lambda: {"A": {"t": ["Multiline", "abc"]}},
    "multiline-None": lambda: {"A": {"t": ["Multiline", None]}},
    "multiline-generator": lambda: {"A": {"t": ["Multiline", _gen(["a", "b"])]}},
    "multiline-dict": lambda: {"A": {"t": ["Multiline", {"a": 1, "b": 2}]}},
    "multiline-np": lambda: {"A": {"t": ["Multiline", np.array(["a", "b"])]}},
    "multiline-empty": lambda: {"A": {"t": ["Multiline", []]}},
    # rejected
    "list": lambda: [("A", {})],
    "None": lambda: None,
    "category-int": lambda: {5: {"t": ["Multiline", ["a"]]}},
    "category-bad-utf8": lambda: {b"\xff": {"t": ["Multiline", ["a"]]}},
    "category-surrogate": lambda: {"\ud800": {"t": ["Multiline", ["a"]]}},
    "charts-list": lambda: {"A": [["Multiline", ["a"]]]},
    "title-int": lambda: {"A": {5: ["Multiline", ["a"]]}},
    "spec-short": lambda: {"A": {"t": ["Multiline"]}},
    "spec-int": lambda: {"A": {"t": 5}},
    "spec-dict-missing": lambda: {"A": {"t": {0: "Margin"}}},
    "margin-2": lambda: {"A": {"t": ["Margin", ["a", "b"]]}},
    "margin-int-tags": lambda: {"A": {"t": ["Margin", [1, 2, 3]]}},
    "margin-None": lambda: {"A": {"t": ["Margin", None]}},
    "margin-generator": lambda: {"A": {"t": ["Margin", _gen("abc")]}},
    "multiline-int": lambda: {"A": {"t": ["Multiline", 5]}},
    "multiline-int-tags": lambda: {"A": {"t": ["Multiline", [1]]}},
    "multiline-bytes": lambda: {"A": {"t": ["Multiline", b"ab"]}},
    "multiline-None-tag": lambda: {"A": {"t": ["Multiline", [None]]}},
    "multiline-bad-utf8": lambda: {"A": {"t": ["Multiline", [b"\xff"]]}},
    "multiline-tensor": lambda: {"A": {"t": ["Multiline", torch.zeros(2)]}},
    "items-not-pairs": lambda: {"A": {"t": ["Multiline", ["a"]]}}.values(),
}


def torch_custom_scalars(layout: Any) -> list[bytes]:
    return [tb_summary.custom_scalars(layout).SerializeToString()]


def our_custom_scalars(layout: Any) -> list[bytes]:
    params, arrays = through_ring(convert_plugins.custom_scalars(layout))
    return [s.SerializeToString() for s in encode_plugins.custom_scalars("", params, arrays)]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_custom_scalars_equal_torch(name: str) -> None:
    make = LAYOUTS[name]
    ref = _run(lambda: torch_custom_scalars(make()))
    ours = _run(lambda: our_custom_scalars(make()))
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        value = tb_summary_pb2.Summary.FromString(ours["result"][0]).value[0]
        assert value.tag == "custom_scalars__config__"
        assert value.metadata.plugin_data.plugin_name == "custom_scalars"
        assert value.tensor.HasField("tensor_shape") and not value.tensor.tensor_shape.dim
        ref_value = tb_summary_pb2.Summary.FromString(ref["result"][0]).value[0]
        assert layout_pb2.Layout.FromString(value.tensor.string_val[0]) == (
            layout_pb2.Layout.FromString(ref_value.tensor.string_val[0])
        )


CHART_HELPERS = [
    (["a", "b"], "default", "untitled"),
    (["a", "b", "c"], "cat", "title"),
    (("a", "b", "c"), b"cat", None),
    ([], 5, "t"),
    ("abc", "c", "t"),
    (None, "c", "t"),
    (5, "c", "t"),
    (["a", "b", "c"], ["unhashable"], "t"),
    (["a", "b", "c"], "c", {}),
    (["a", "b", "c", "d"], "c", "t"),
]


@pytest.mark.parametrize(("tags", "category", "title"), CHART_HELPERS)
@pytest.mark.parametrize("margin", [False, True], ids=["multiline", "margin"])
def test_chart_helpers_equal_torch(tags: Any, category: Any, title: Any, margin: bool) -> None:
    """torch's add_custom_scalars_{multiline,margin}chart: layout dict, then custom_scalars."""
    kind = "Margin" if margin else "Multiline"

    def torch_side() -> list[bytes]:
        if margin and len(tags) != 3:
            raise AssertionError(f"Expected 3 tags, got {len(tags)}.")
        return torch_custom_scalars({category: {title: [kind, tags]}})

    helper = convert_plugins.margin_layout if margin else convert_plugins.multiline_layout
    ref = _run(torch_side)
    ours = _run(lambda: our_custom_scalars(helper(tags, category, title)))
    assert_same_outcome(ref, ours)


def test_golden_custom_scalars(request: pytest.FixtureRequest) -> None:
    payload = convert_plugins.custom_scalars(LAYOUTS["doc-example"]())
    (s,) = encode_plugins.custom_scalars("", *through_ring(payload))
    assert_golden(request, "custom_scalars/doc_example", s)
    layout = layout_pb2.Layout.FromString(s.value[0].tensor.string_val[0])
    assert_golden(request, "custom_scalars/doc_example_layout", layout)
