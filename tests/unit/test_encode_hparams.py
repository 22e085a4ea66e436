"""add_hparams: ``convert_plugins.hparams`` then ``encode_plugins.hparams``, against torch's.

``convert_plugins`` in the trainer, a round trip through the ring's encoding
(msgpack params, raw arrays read back read-only) and ``encode_plugins`` in the
daemon must give the Summaries torch 2.13's own summary functions give, byte
for byte, with the same stdout and warnings (helpers in
``encode_plugins_helpers.py``); a golden file pins representative cases.

Covered here: hparams of every value kind and domain (the session-start map
compared as parsed: its order is a per-process hash order in torch), a
deterministic session start, and metric values checked before anything is
written.
"""

from __future__ import annotations

import decimal
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from tensorboard.plugins.hparams import plugin_data_pb2 as hp_data_pb2
from torch.utils.tensorboard import summary as tb_summary

from summaryd import convert_plugins
from summaryd.daemon import encode_plugins
from summaryd.proto import summary_pb2

from ..transport import through_ring  # noqa: E402
from .encode_plugins_helpers import _run, assert_golden, assert_same_outcome

# -- hparams -------------------------------------------------------------------------------

M = {"accuracy": 0.5}

HPARAMS: dict[str, Callable[[], tuple[Any, Any, Any]]] = {
    "doc-example": lambda: (
        {"lr": 0.1, "bsize": 4},
        {"hparam/accuracy": 10, "hparam/loss": 1},
        None,
    ),
    "kinds": lambda: (
        {"lr": 0.1, "bs": 32, "opt": "adam", "flag": True, "off": False, "none": None},
        M,
        None,
    ),
    "domains": lambda: (
        {"lr": 0.1, "bs": 32, "opt": "adam", "flag": True},
        M,
        {"lr": [0.1, 0.2], "bs": [32, 64, True], "opt": ["adam", "sgd"], "flag": [True, False]},
    ),
    "domain-empty": lambda: ({"lr": 0.1}, M, {"lr": []}),
    "domain-nan": lambda: ({"lr": 0.1}, M, {"lr": [float("nan"), float("inf")]}),
    "domain-falsy-list": lambda: ({"lr": 0.1}, M, []),
    "domain-falsy-zero": lambda: ({"lr": 0.1}, M, 0),
    "domain-None-value": lambda: ({"lr": None}, M, {"lr": [None]}),
    "domain-np-float": lambda: ({"lr": 0.1}, M, {"lr": [np.float64(0.3)]}),
    "domain-tensor": lambda: ({"lr": torch.tensor([0.5])}, M, {"lr": [torch.tensor([1.0])]}),
    "tensor-1d": lambda: ({"lr": torch.tensor([0.5, 0.7])}, M, None),
    "tensor-int": lambda: ({"lr": torch.tensor([3])}, M, None),
    "tensor-bool": lambda: ({"lr": torch.tensor([True])}, M, None),
    "tensor-bf16": lambda: ({"lr": torch.tensor([0.1], dtype=torch.bfloat16)}, M, None),
    "tensor-complex": lambda: ({"lr": torch.tensor([0.1 + 1j])}, M, None),
    "np-float64": lambda: ({"lr": np.float64(0.1)}, M, None),
    "int-2**63": lambda: ({"lr": 2**63 + 1}, M, None),
    "inf": lambda: ({"lr": float("inf"), "n": float("nan")}, M, None),
    "bytes-keys": lambda: ({b"lr": 0.1}, {b"m": 1.0}, None),
    "duplicate-names": lambda: ({"lr": 0.1, b"lr": "x"}, M, None),
    "str-subclass": lambda: ({"s": np.str_("x")}, M, {"s": [np.str_("y")]}),
    "unicode": lambda: ({"ü": "日本", "z\0": ""}, {"τ/acc": 1}, None),
    "metric-None-key": lambda: ({"a": 1}, {None: 2.0}, None),
    "metric-tensor": lambda: ({"a": 1}, {"m": torch.tensor(2.5)}, None),
    "metric-np": lambda: ({"a": 1}, {"m": np.float32(2.5)}, None),
    "empty": lambda: ({}, {}, None),
    "many": lambda: ({f"h{i}": i * 0.5 for i in range(40)}, {f"m{i}": i for i in range(5)}, None),
    # rejected
    "not-dicts": lambda: ([("lr", 0.1)], M, None),
    "ordered-dict": lambda: (OrderedDict(lr=0.1), M, None),
    "metric-not-dict": lambda: ({"lr": 0.1}, None, None),
    "domain-list": lambda: ({"lr": 0.1}, M, [1]),
    "domain-float-int": lambda: ({"lr": 0.1}, M, {"lr": [1]}),
    "domain-missing": lambda: ({"lr": 0.1}, M, {"x": [1.0]}),
    "domain-tuple": lambda: ({"lr": 0.1}, M, {"lr": (0.1,)}),
    "domain-bool-int": lambda: ({"f": True}, M, {"f": [1]}),
    "domain-surrogate": lambda: ({"s": "a"}, M, {"s": ["\ud800"]}),
    "domain-huge-int": lambda: ({"n": 1}, M, {"n": [10**400]}),
    "domain-np-array": lambda: ({"lr": 0.1}, M, np.array([1, 2])),
    "tensor-0d": lambda: ({"lr": torch.tensor(0.5)}, M, None),
    "tensor-empty": lambda: ({"lr": torch.zeros(0)}, M, None),
    "tensor-2d": lambda: ({"lr": torch.tensor([[0.5, 0.7]])}, M, None),
    "np-float32": lambda: ({"lr": np.float32(0.1)}, M, None),
    "np-int": lambda: ({"lr": np.int64(3)}, M, None),
    "np-array": lambda: ({"lr": np.array([0.1])}, M, None),
    "list": lambda: ({"lr": [1]}, M, None),
    "decimal": lambda: ({"lr": decimal.Decimal("0.1")}, M, None),
    "bytes-value": lambda: ({"s": b"abc"}, M, None),
    "huge-int": lambda: ({"lr": 10**400}, M, None),
    "key-int": lambda: ({5: 0.1}, M, None),
    "key-None": lambda: ({None: 0.1}, M, None),
    "key-tuple": lambda: ({(1,): 0.1}, M, None),
    "key-bad-utf8": lambda: ({b"\xff": 0.1}, M, None),
    "key-surrogate": lambda: ({"\ud800": 0.1}, M, None),
    "str-surrogate": lambda: ({"s": "\ud800"}, M, None),
    "metric-key-int": lambda: ({"lr": 0.1}, {5: 1.0}, None),
    "metric-key-bad-utf8": lambda: ({"lr": 0.1}, {b"\xff": 1.0}, None),
}

_HP_TAGS = ["_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"]


def _canonical_hparams(summaries: list[Any]) -> list[bytes]:
    """Serialized Summaries, their plugin content re-serialized deterministically (map order)."""
    out = []
    for s in summaries:
        s = tb_summary_pb2.Summary.FromString(s.SerializeToString())
        meta = s.value[0].metadata.plugin_data
        meta.content = hp_data_pb2.HParamsPluginData.FromString(meta.content).SerializeToString(
            deterministic=True
        )
        out.append(s.SerializeToString())
    return out


def torch_hparams(h: Any, m: Any, d: Any) -> list[bytes]:
    if type(h) is not dict or type(m) is not dict:  # torch's SummaryWriter.add_hparams
        raise TypeError("hparam_dict and metric_dict should be dictionary.")
    summaries = _canonical_hparams(list(tb_summary.hparams(h, m, d)))
    # then torch's writer logs each metric with add_scalar
    scalars = [tb_summary.scalar(k, v).SerializeToString() for k, v in m.items()]
    return summaries + scalars


def our_hparams(h: Any, m: Any, d: Any) -> list[bytes]:
    params, metrics = convert_plugins.hparams(h, m, d)
    params, arrays = through_ring((params, []))
    summaries = encode_plugins.hparams("", params, arrays)
    # the writer sends each metric as a SCALAR record: Summary.Value(tag, simple_value)
    scalars = [
        summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=v)])
        for k, v in metrics
    ]
    return _canonical_hparams(summaries) + [s.SerializeToString() for s in scalars]


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_hparams_equal_torch(name: str) -> None:
    make = HPARAMS[name]
    ref = _run(lambda: torch_hparams(*make()))
    ours = _run(lambda: our_hparams(*make()))
    ref["warnings"] = [w for w in ref["warnings"] if "nothing logged" not in w[1]]
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        summaries = [tb_summary_pb2.Summary.FromString(b) for b in ours["result"][:3]]
        assert [s.value[0].tag for s in summaries] == _HP_TAGS
        assert all(s.value[0].metadata.plugin_data.plugin_name == "hparams" for s in summaries)


def test_hparams_session_start_is_deterministic() -> None:
    """torch's map order is a per-process hash order; ours is sorted, the same every time."""
    h = {k: 1.0 for k in ("zeta", "alpha", "mid", "beta")}
    params, _ = convert_plugins.hparams(h, {}, None)
    first = encode_plugins.hparams("", params, [])[1].SerializeToString()
    again = encode_plugins.hparams("", params, [])[1].SerializeToString()
    assert first == again
    content = summary_pb2.Summary.FromString(first).value[0].metadata.plugin_data.content
    keys = list(hp_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams)
    assert content == (
        hp_data_pb2.HParamsPluginData.FromString(content).SerializeToString(deterministic=True)
    )
    assert sorted(keys) == sorted(h)


def test_hparams_metric_values_checked_before_anything_is_written() -> None:
    """torch writes the three summaries before add_scalar fails on a bad metric; we raise first."""
    with pytest.raises(ValueError, match="metric_dict"):
        convert_plugins.hparams({"lr": 0.1}, {"m": np.zeros(3)}, None)


def test_golden_hparams(request: pytest.FixtureRequest) -> None:
    params, _ = convert_plugins.hparams(
        {"lr": 0.01, "bs": 32, "opt": "adam", "flag": True, "skip": None},
        {"hparam/accuracy": 0.9},
        {"opt": ["adam", "sgd"], "bs": [32, 64]},
    )
    for tag, s in zip(
        _HP_TAGS, encode_plugins.hparams("", *through_ring((params, []))), strict=True
    ):
        name = tag.split("/")[1]
        assert_golden(request, f"hparams/basic_{name}", s)
        data = hp_data_pb2.HParamsPluginData.FromString(s.value[0].metadata.plugin_data.content)
        assert_golden(request, f"hparams/basic_{name}_plugin_data", data)
