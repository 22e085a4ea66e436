"""Hostile records into the plugin encoders (``summaryd.daemon.encode_plugins``).

Hypothesis: any params and arrays (and params with the right keys and mostly
plausible values) make the audio, custom-scalars, mesh and hparams encoders
return Summaries or raise TypeError/ValueError, nothing else; malformed
records are refused; the output's size is bounded by the record's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from summaryd.daemon import encode_plugins
from summaryd.proto import summary_pb2

# -- hostile records -----------------------------------------------------------------------

_DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", ">f4", ">i2"]

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)

anything = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=16,
)


@st.composite
def arrays_st(draw: st.DrawFn, max_n: int = 3) -> list[np.ndarray]:
    out = []
    for _ in range(draw(st.integers(0, max_n))):
        a = draw(
            hnp.arrays(
                dtype=st.sampled_from(_DTYPES).map(np.dtype),
                shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
            )
        )
        a.flags.writeable = False
        out.append(a)
    return out


def _near(
    fields: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Any]:
    """Params with the right keys and mostly plausible values, sometimes anything."""
    return (
        st.fixed_dictionaries(
            {k: v | anything for k, v in fields.items()},
            optional={k: v | anything for k, v in (optional or {}).items()},
        )
        | anything
    )


NEAR_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "audio": _near(
        {
            "rate": st.integers(-2, 2**33),
            "sample_rate": st.floats() | st.integers(-2, 2**33),
            "clip": st.booleans(),
            "pcm": st.booleans(),
        }
    ),
    "custom_scalars": _near(
        {
            "layout": st.lists(
                st.tuples(
                    st.text(max_size=4),
                    st.lists(
                        st.tuples(
                            st.text(max_size=4), st.booleans(), st.lists(st.text(max_size=3))
                        ).map(list)
                        | anything,
                        max_size=3,
                    ),
                ).map(list)
                | anything,
                max_size=3,
            )
        }
    ),
    "mesh": _near(
        {
            "json_config": st.text(max_size=10),
            "parts": st.lists(st.integers(-1, 5), max_size=4),
        },
        {"name": st.text(max_size=4), "prefix": st.text(max_size=4)},
    ),
    "hparams": _near(
        {
            "hparams": st.lists(
                st.tuples(
                    st.text(max_size=4) | anything,
                    st.sampled_from(["number", "string", "other"]),
                    st.floats() | st.text(max_size=4) | anything,
                    st.none() | st.lists(st.floats() | st.text(max_size=3)) | anything,
                ).map(list)
                | anything,
                max_size=4,
            ),
            "metrics": st.lists(st.text(max_size=4)) | anything,
        }
    ),
}


@pytest.mark.parametrize("kind", sorted(NEAR_PARAMS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_records_raise_only_type_or_value_errors(kind: str, data: st.DataObject) -> None:
    fn = getattr(encode_plugins, kind)
    tag = data.draw(st.text(max_size=6) | anything, label="tag")
    params = data.draw(NEAR_PARAMS[kind], label="params")
    arrays = data.draw(arrays_st() | anything, label="arrays")
    try:
        out = fn(tag, params, arrays)
    except (TypeError, ValueError):
        return
    for s in out:
        assert isinstance(s, summary_pb2.Summary)
        s.SerializeToString()


@pytest.mark.parametrize(
    ("kind", "params", "arrays"),
    [
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": True}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": True, "pcm": False}, "i1"),
        ("audio", {"rate": 0, "sample_rate": 8000.0, "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": float("nan"), "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": True, "sample_rate": 8000.0, "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": False}, ">f4"),
        ("mesh", {"json_config": "{}", "parts": [3, 1]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [1, 1]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [4]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [True]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [1]}, None),
        ("custom_scalars", {"layout": [["c", [["t", True, ["a", "b"]]]]]}, None),
        ("custom_scalars", {"layout": [["c", [["t", 1, ["a"]]]]]}, None),
        ("hparams", {"hparams": [["a", "number", 1, None]], "metrics": []}, None),
        ("hparams", {"hparams": [["a", "string", 1.0, None]], "metrics": []}, None),
        ("hparams", {"hparams": [["a", "number", 1.0, ["x"]]], "metrics": []}, None),
        ("hparams", {"hparams": [], "metrics": [b"m"]}, None),
        ("hparams", {"hparams": [["\ud800", "number", 1.0, None]], "metrics": []}, None),
    ],
)
def test_malformed_records(kind: str, params: Any, arrays: str | None) -> None:
    arrs = [] if arrays is None else [np.zeros(4 if kind == "audio" else (1, 2, 3), arrays)]
    with pytest.raises((TypeError, ValueError)):
        getattr(encode_plugins, kind)("t", params, arrs)


def test_output_size_is_bounded_by_the_record() -> None:
    """The largest amplification: uint8 mesh colors become float32 (4x), bool audio int16 (2x)."""
    c = np.zeros((1, 100_000, 3), np.uint8)
    (s,) = encode_plugins.mesh("m", {"json_config": "{}", "parts": [3]}, [c])
    assert len(s.SerializeToString()) < 4 * c.nbytes + 1000
    a = np.zeros(100_000, bool)
    params = {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": False}
    (s,) = encode_plugins.audio("a", params, [a])
    assert len(s.SerializeToString()) < 2 * a.nbytes + 1000
