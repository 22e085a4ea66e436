"""Bad input to add_audio, add_custom_scalars*, add_mesh and add_hparams raises in the caller.

Each call goes to torch 2.13's own ``SummaryWriter`` method and to the
conversion summaryd's writer runs for it (``convert_plugins``, as
``sdk/writer.py`` calls it); torch must raise, and summaryd must raise an
instance of torch's exception type (numpy's private exception classes stand
for the builtin they derive from) whose message names the argument.  What
torch prints (the audio clipping notice) summaryd prints too.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import convert_plugins
from summaryd.errors import InvalidArgumentError

Call = Callable[[Any], Any]


class OurConversions:
    """The conversions summaryd's writer methods run before a record is sent (no daemon)."""

    def add_audio(
        self,
        tag: Any,
        snd_tensor: Any,
        global_step: Any = None,
        sample_rate: Any = 44100,
        walltime: Any = None,
    ) -> None:
        convert_plugins.audio(snd_tensor, sample_rate)

    def add_custom_scalars(self, layout: Any) -> None:
        convert_plugins.custom_scalars(layout)

    def add_custom_scalars_multilinechart(
        self, tags: Any, category: Any = "default", title: Any = "untitled"
    ) -> None:
        convert_plugins.custom_scalars(convert_plugins.multiline_layout(tags, category, title))

    def add_custom_scalars_marginchart(
        self, tags: Any, category: Any = "default", title: Any = "untitled"
    ) -> None:
        convert_plugins.custom_scalars(convert_plugins.margin_layout(tags, category, title))

    def add_mesh(
        self,
        tag: Any,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config_dict: Any = None,
        global_step: Any = None,
        walltime: Any = None,
    ) -> None:
        convert_plugins.mesh(vertices, colors, faces, config_dict)

    def add_hparams(
        self,
        hparam_dict: Any,
        metric_dict: Any,
        hparam_domain_discrete: Any = None,
        run_name: Any = None,
        global_step: Any = None,
    ) -> None:
        convert_plugins.hparams(hparam_dict, metric_dict, hparam_domain_discrete)


def _bad(id_: str, arg: str, call: Call) -> Any:
    return pytest.param(call, arg, id=id_)


def _meta_tensor(n: int) -> torch.Tensor:
    """torch's make_np draws ``np.random.randn(1)`` for a meta tensor (and prints the
    clipping notice when it exceeds 1); seeded, both sides draw the same number."""
    np.random.seed(n)
    return torch.zeros(n, device="meta")


def _circular() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


V = np.zeros((1, 4, 3), np.float32)
A = np.linspace(-0.5, 0.5, 100)

BAD_CALLS = [
    # add_audio: snd_tensor
    _bad("audio-list", "snd_tensor", lambda w: w.add_audio("a", [0.1, 0.2])),
    _bad("audio-None", "snd_tensor", lambda w: w.add_audio("a", None)),
    _bad("audio-object", "snd_tensor", lambda w: w.add_audio("a", object())),
    _bad("audio-str", "snd_tensor", lambda w: w.add_audio("a", "abc")),
    _bad("audio-empty", "snd_tensor", lambda w: w.add_audio("a", np.zeros(0))),
    _bad("audio-empty-2d", "snd_tensor", lambda w: w.add_audio("a", torch.zeros(1, 0))),
    _bad("audio-2d", "snd_tensor", lambda w: w.add_audio("a", np.zeros((2, 3)))),
    _bad("audio-2d-loud", "snd_tensor", lambda w: w.add_audio("a", np.full((2, 3), 2.0))),
    _bad("audio-float", "snd_tensor", lambda w: w.add_audio("a", 0.5)),
    _bad("audio-one-sample", "snd_tensor", lambda w: w.add_audio("a", np.array([0.5]))),
    _bad("audio-int8", "snd_tensor", lambda w: w.add_audio("a", np.array([-1, 0, 1], np.int8))),
    _bad("audio-uint8", "snd_tensor", lambda w: w.add_audio("a", np.array([0, 255], np.uint8))),
    _bad("audio-int8-torch", "snd_tensor", lambda w: w.add_audio("a", torch.tensor([1, 2]).char())),
    _bad("audio-str-array", "snd_tensor", lambda w: w.add_audio("a", np.array(["a", "b"]))),
    _bad(
        "audio-object-None",
        "snd_tensor",
        lambda w: w.add_audio("a", np.array([None, 0.5], dtype=object)),
    ),
    _bad("audio-meta", "snd_tensor", lambda w: w.add_audio("a", _meta_tensor(5))),
    _bad(
        "audio-float8",
        "snd_tensor",
        lambda w: w.add_audio("a", torch.zeros(5).to(torch.float8_e4m3fn)),
    ),
    # add_audio: sample_rate
    _bad("rate-zero", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=0)),
    _bad("rate-negative", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=-1)),
    _bad("rate-0.4", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=0.4)),
    _bad("rate-nan", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=float("nan"))),
    _bad("rate-inf", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=float("inf"))),
    _bad("rate-str", "sample_rate", lambda w: w.add_audio("a", A, sample_rate="44100")),
    _bad("rate-None", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=None)),
    _bad("rate-complex", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=1j)),
    _bad("rate-list", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=[8000])),
    _bad(
        "rate-tensor", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=torch.tensor(8000))
    ),
    _bad("rate-2**31", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=2**31)),
    _bad("rate-1e40", "sample_rate", lambda w: w.add_audio("a", A, sample_rate=1e40)),
    _bad("rate-loud", "sample_rate", lambda w: w.add_audio("a", A * 3, sample_rate=-5)),
    _bad(
        "audio-before-rate",
        "snd_tensor",
        lambda w: w.add_audio("a", np.zeros((2, 3)), sample_rate=-1),
    ),
    # add_custom_scalars
    _bad("layout-list", "layout", lambda w: w.add_custom_scalars([("A", {})])),
    _bad("layout-None", "layout", lambda w: w.add_custom_scalars(None)),
    _bad("layout-category-int", "layout", lambda w: w.add_custom_scalars({5: {}})),
    _bad("layout-category-bad-utf8", "layout", lambda w: w.add_custom_scalars({b"\xff": {}})),
    _bad("layout-category-surrogate", "layout", lambda w: w.add_custom_scalars({"\ud800": {}})),
    _bad("layout-charts-list", "layout", lambda w: w.add_custom_scalars({"A": [["M", ["a"]]]})),
    _bad(
        "layout-title-int",
        "layout",
        lambda w: w.add_custom_scalars({"A": {5: ["Multiline", ["a"]]}}),
    ),
    _bad("layout-spec-short", "layout", lambda w: w.add_custom_scalars({"A": {"t": ["M"]}})),
    _bad("layout-spec-int", "layout", lambda w: w.add_custom_scalars({"A": {"t": 5}})),
    _bad(
        "layout-spec-dict-missing",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": {0: "Margin"}}}),
    ),
    _bad(
        "layout-kind-array",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": [np.array(["a", "b"]), ["x"]]}}),
    ),
    _bad(
        "layout-margin-2",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Margin", ["a", "b"]]}}),
    ),
    _bad(
        "layout-margin-int",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Margin", [1, 2, 3]]}}),
    ),
    _bad(
        "layout-margin-None",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Margin", None]}}),
    ),
    _bad(
        "layout-margin-generator",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Margin", (t for t in "abc")]}}),
    ),
    _bad(
        "layout-multiline-int",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", 5]}}),
    ),
    _bad(
        "layout-multiline-int-tags",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", [1]]}}),
    ),
    _bad(
        "layout-multiline-bytes",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", b"ab"]}}),
    ),
    _bad(
        "layout-multiline-None-tag",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", [None]]}}),
    ),
    _bad(
        "layout-multiline-bad-utf8",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", ["a", b"\xff"]]}}),
    ),
    _bad(
        "layout-multiline-surrogate",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", ["\udc80"]]}}),
    ),
    _bad(
        "layout-multiline-tensor",
        "layout",
        lambda w: w.add_custom_scalars({"A": {"t": ["Multiline", torch.zeros(2)]}}),
    ),
    _bad(
        "layout-items-not-pairs",
        "layout",
        lambda w: w.add_custom_scalars(OrderedDict(A={"t": ["Multiline", ["a"]]}).values()),
    ),
    # add_custom_scalars_{multiline,margin}chart
    _bad("margin-2-tags", "tags", lambda w: w.add_custom_scalars_marginchart(["a", "b"])),
    _bad("margin-None-tags", "tags", lambda w: w.add_custom_scalars_marginchart(None)),
    _bad("margin-int-tags", "layout", lambda w: w.add_custom_scalars_marginchart([1, 2, 3])),
    _bad(
        "margin-category-list",
        "category",
        lambda w: w.add_custom_scalars_marginchart(["a", "b", "c"], ["c"]),
    ),
    _bad(
        "margin-title-dict",
        "title",
        lambda w: w.add_custom_scalars_marginchart(["a", "b", "c"], "c", {}),
    ),
    _bad("multiline-int-tags", "layout", lambda w: w.add_custom_scalars_multilinechart(5)),
    _bad("multiline-category-int", "layout", lambda w: w.add_custom_scalars_multilinechart([], 5)),
    _bad(
        "multiline-title-bad-utf8",
        "layout",
        lambda w: w.add_custom_scalars_multilinechart(["a"], "c", b"\xff"),
    ),
    _bad(
        "multiline-category-set",
        "category",
        lambda w: w.add_custom_scalars_multilinechart(["a"], {"c"}),
    ),
    # add_mesh
    _bad("mesh-2d", "vertices", lambda w: w.add_mesh("m", V[0])),
    _bad("mesh-4d", "vertices", lambda w: w.add_mesh("m", V[None])),
    _bad("mesh-scalar", "vertices", lambda w: w.add_mesh("m", 5.0)),
    _bad("mesh-str", "vertices", lambda w: w.add_mesh("m", "abc")),
    _bad("mesh-object", "vertices", lambda w: w.add_mesh("m", object())),
    _bad("mesh-ragged", "vertices", lambda w: w.add_mesh("m", [[[1, 2, 3]], [[1, 2]]])),
    _bad("mesh-list-None", "vertices", lambda w: w.add_mesh("m", [[[None, 1, 2]]])),
    _bad("mesh-int-overflow", "vertices", lambda w: w.add_mesh("m", [[[2**64, 1, 2]]])),
    _bad("mesh-complex", "vertices", lambda w: w.add_mesh("m", np.ones((1, 1, 3), np.complex64))),
    _bad("mesh-complex-2d", "vertices", lambda w: w.add_mesh("m", np.ones((1, 3), np.complex64))),
    _bad(
        "mesh-torch-complex",
        "vertices",
        lambda w: w.add_mesh("m", torch.ones((1, 1, 3), dtype=torch.complex64)),
    ),
    _bad("mesh-np-str", "vertices", lambda w: w.add_mesh("m", np.array([[["a", "b", "c"]]]))),
    _bad(
        "mesh-np-object",
        "vertices",
        lambda w: w.add_mesh("m", np.array([[[None, 1, 2]]], dtype=object)),
    ),
    _bad("mesh-longdouble", "vertices", lambda w: w.add_mesh("m", V.astype(np.longdouble))),
    _bad("mesh-negative-stride", "vertices", lambda w: w.add_mesh("m", V[:, ::-1])),
    _bad("mesh-big-endian", "vertices", lambda w: w.add_mesh("m", V.astype(">f4"))),
    _bad(
        "mesh-meta",
        "vertices",
        lambda w: w.add_mesh("m", torch.ones((1, 1, 3), device="meta")),
    ),
    _bad("mesh-meta-2d", "vertices", lambda w: w.add_mesh("m", torch.ones((1, 3), device="meta"))),
    _bad("mesh-colors-2d", "colors", lambda w: w.add_mesh("m", V, colors=np.zeros((4, 3)))),
    _bad(
        "mesh-faces-before-colors",
        "faces",
        lambda w: w.add_mesh("m", V, colors=np.zeros((4, 3)), faces="x"),
    ),
    _bad("mesh-config-np", "config_dict", lambda w: w.add_mesh("m", V, config_dict={"a": V})),
    _bad(
        "mesh-config-mixed-keys",
        "config_dict",
        lambda w: w.add_mesh("m", V, config_dict={"a": 1, 2: 3}),
    ),
    _bad(
        "mesh-config-circular", "config_dict", lambda w: w.add_mesh("m", V, config_dict=_circular())
    ),
    _bad(
        "mesh-config-tuple-key", "config_dict", lambda w: w.add_mesh("m", V, config_dict={(1,): 1})
    ),
    _bad(
        "mesh-config-before-vertices",
        "config_dict",
        lambda w: w.add_mesh("m", V[0], config_dict={"a": object()}),
    ),
    # add_hparams
    _bad("hp-list", "hparam_dict", lambda w: w.add_hparams([("lr", 0.1)], {"m": 1})),
    _bad("hp-ordered-dict", "hparam_dict", lambda w: w.add_hparams(OrderedDict(lr=0.1), {})),
    _bad("hp-metric-None", "metric_dict", lambda w: w.add_hparams({"lr": 0.1}, None)),
    _bad("hp-domain-list", "hparam_domain_discrete", lambda w: w.add_hparams({"a": 1}, {}, [1])),
    _bad(
        "hp-domain-array",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"a": 1}, {}, np.array([1, 2])),
    ),
    _bad(
        "hp-domain-float-int",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"lr": 0.1}, {}, {"lr": [1]}),
    ),
    _bad(
        "hp-domain-missing",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"lr": 0.1}, {}, {"x": [0.1]}),
    ),
    _bad(
        "hp-domain-tuple",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"lr": 0.1}, {}, {"lr": (0.1,)}),
    ),
    _bad(
        "hp-domain-bool-int",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"f": True}, {}, {"f": [1]}),
    ),
    _bad(
        "hp-domain-surrogate",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"s": "a"}, {}, {"s": ["\ud800"]}),
    ),
    _bad(
        "hp-domain-huge-int",
        "hparam_domain_discrete",
        lambda w: w.add_hparams({"n": 1}, {}, {"n": [10**400]}),
    ),
    _bad("hp-tensor-0d", "hparam_dict", lambda w: w.add_hparams({"lr": torch.tensor(0.5)}, {})),
    _bad("hp-tensor-empty", "hparam_dict", lambda w: w.add_hparams({"lr": torch.zeros(0)}, {})),
    _bad("hp-tensor-2d", "hparam_dict", lambda w: w.add_hparams({"lr": torch.zeros(1, 2)}, {})),
    _bad("hp-np-float32", "hparam_dict", lambda w: w.add_hparams({"lr": np.float32(0.1)}, {})),
    _bad("hp-np-int", "hparam_dict", lambda w: w.add_hparams({"lr": np.int64(3)}, {})),
    _bad("hp-np-array", "hparam_dict", lambda w: w.add_hparams({"lr": np.array([0.1])}, {})),
    _bad("hp-list-value", "hparam_dict", lambda w: w.add_hparams({"lr": [1]}, {})),
    _bad("hp-bytes-value", "hparam_dict", lambda w: w.add_hparams({"s": b"abc"}, {})),
    _bad("hp-huge-int", "hparam_dict", lambda w: w.add_hparams({"n": 10**400}, {})),
    _bad("hp-key-int", "hparam_dict", lambda w: w.add_hparams({5: 0.1}, {})),
    _bad("hp-key-None", "hparam_dict", lambda w: w.add_hparams({None: 0.1}, {})),
    _bad("hp-key-tuple", "hparam_dict", lambda w: w.add_hparams({(1,): "x"}, {})),
    _bad("hp-key-bad-utf8", "hparam_dict", lambda w: w.add_hparams({b"\xff": 0.1}, {})),
    _bad("hp-key-surrogate", "hparam_dict", lambda w: w.add_hparams({"\ud800": 0.1}, {})),
    _bad("hp-str-surrogate", "hparam_dict", lambda w: w.add_hparams({"s": "\ud800"}, {})),
    _bad("hp-metric-key-int", "metric_dict", lambda w: w.add_hparams({}, {5: 1.0})),
    _bad("hp-metric-key-bad-utf8", "metric_dict", lambda w: w.add_hparams({}, {b"\xff": 1.0})),
    _bad("hp-metric-value-None", "metric_dict", lambda w: w.add_hparams({}, {"m": None})),
    _bad("hp-metric-value-zeros3", "metric_dict", lambda w: w.add_hparams({}, {"m": np.zeros(3)})),
    _bad("hp-metric-value-str", "metric_dict", lambda w: w.add_hparams({}, {"m": "abc"})),
    _bad("hp-metric-value-list", "metric_dict", lambda w: w.add_hparams({}, {"m": [1.0]})),
]


@pytest.fixture(scope="module")
def torch_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    w = TorchWriter(str(tmp_path_factory.mktemp("torch")))
    yield w
    w.close()


def _outcome(call: Call, w: Any) -> tuple[BaseException | None, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's cast warnings are compared in the encoder tests
        try:
            call(w)
        except Exception as exc:
            return exc, out.getvalue()
    return None, out.getvalue()


def _expected_type(exc: BaseException) -> type[BaseException]:
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("numpy"):
            return cls
    raise AssertionError(exc)  # pragma: no cover


@pytest.mark.parametrize(("call", "arg"), BAD_CALLS)
def test_bad_input_raises_what_torch_raises(torch_writer: Any, call: Call, arg: str) -> None:
    torch_exc, torch_out = _outcome(call, torch_writer)
    assert torch_exc is not None, "torch accepts this call: not a bad-input case"
    ours, our_out = _outcome(call, OurConversions())
    assert ours is not None, f"torch raises {torch_exc!r}; summaryd accepts"
    assert isinstance(ours, _expected_type(torch_exc)), (
        f"torch raises {type(torch_exc).__name__} ({torch_exc}); summaryd raises "
        f"{type(ours).__name__} ({ours}) (mro {[c.__name__ for c in type(ours).__mro__]})"
    )
    assert isinstance(ours, InvalidArgumentError), repr(ours)
    assert arg in str(ours), f"message does not name {arg!r}: {ours}"
    assert our_out == torch_out


@pytest.mark.parametrize(
    ("exc_type", "args"),
    [
        (convert_plugins.ArgumentIndexError, ("x: too short",)),
        (convert_plugins.ArgumentKeyError, ("x: no key 1",)),
        (convert_plugins.SampleRateError, ("sample_rate: bad",)),
        (convert_plugins.WaveHeaderRangeError, ("sample_rate: too big",)),
    ],
)
def test_local_error_classes(exc_type: type[Exception], args: tuple[str]) -> None:
    """The classes errors.py lacks: also the builtin (or module) error torch raises,
    a ValueError/TypeError family member where one fits, and plain messages."""
    exc = exc_type(*args)
    assert isinstance(exc, InvalidArgumentError)
    assert str(exc) == args[0]


def test_good_input_is_accepted(tmp_path: Path) -> None:
    """Inputs at the edge of what torch accepts are accepted (their output: the encoder tests)."""
    ours = OurConversions()
    ours.add_audio("a", np.array([True, False]), sample_rate=True)
    ours.add_custom_scalars({None: {None: ["Margin", [None, b"b", "c"]]}})
    ours.add_custom_scalars_marginchart("abc", b"cat", None)
    ours.add_mesh("m", None, config_dict=float("nan"))
    ours.add_hparams({"b": True, "n": None}, {None: torch.tensor(1.0)}, 0)
