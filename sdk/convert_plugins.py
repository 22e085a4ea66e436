"""Validation and conversion in the caller for audio, custom scalars, meshes and hparams.

Each function takes what a user passes torch 2.13's ``SummaryWriter.add_audio``,
``add_custom_scalars``, ``add_mesh`` or ``add_hparams`` and returns
``(params, arrays)`` for one record (``hparams`` also returns the metric
scalars), or raises at the call site an instance of what torch raises for the
same input (``torch/utils/tensorboard/summary.py``: ``audio``,
``custom_scalars``, ``mesh``, ``hparams``), checked in torch's order, so the
first error torch would hit is the one raised.

The trainer pays only validation and ``make_np``: WAV, protobuf and float32
conversion happen in the daemon (``daemon/encode_plugins.py``).  numpy is
imported at the top; torch only inside the functions that meet a tensor.

Params, as the encoders read them:

* audio: ``rate`` (int, the WAV header's frame rate, ``int(round(sample_rate))``
  as ``wave`` computes it), ``sample_rate`` (float, ``Summary.Audio.sample_rate``),
  ``clip`` (bool, torch's ``abs(x).max() > 1``), ``pcm`` (bool: the one array
  already holds the final little-endian int16 samples).
* custom_scalars: ``layout``: ``[[category, [[title, margin, [tags...]], ...]], ...]``.
* mesh: ``json_config`` (str), ``parts`` (the content types present, in torch's
  order VERTEX=1, FACE=2, COLOR=3), one array per part; optionally ``name`` and
  ``prefix`` (torch's spellings of the user's tag; the record's tag otherwise).
* hparams: ``hparams``: ``[[name, "number" | "string", value, domain or None], ...]``
  in ``hparam_dict`` order, ``metrics``: the metric names.
"""

from __future__ import annotations

import json
import struct
import warnings
import wave
from typing import Any, NoReturn

import numpy as np

from .convert import _is_torch_tensor, check_utf8, reraise, to_scalar, to_tag
from .errors import (
    ArgumentAttributeError,
    ArgumentDecodingError,
    ArgumentIndexError,
    ArgumentKeyError,
    ArgumentShapeError,
    ArgumentTypeError,
    ArgumentValueError,
    InvalidArgumentError,
    UnsupportedValueError,
)

Payload = tuple[dict[str, Any], list[np.ndarray]]


# -- exceptions torch raises here that errors.py has no class for (yet) -----------------
# These belong in errors.py (owned by the lead); they live here until moved.


class SampleRateError(InvalidArgumentError, wave.Error, ValueError):
    """``sample_rate`` that the ``wave`` module refuses (torch: ``wave.Error``)."""


class WaveHeaderRangeError(InvalidArgumentError, struct.error, OverflowError):
    """A WAV header field beyond 32 bits (torch: ``struct.error`` from ``wave``)."""


def _reraise(exc: BaseException, name: str, expected: str) -> NoReturn:
    """``convert.reraise`` plus the lookup and decoding errors torch's code paths raise here."""
    if isinstance(exc, InvalidArgumentError):
        raise exc
    msg = f"{name}: expected {expected}, got an unusable value ({exc})"
    if isinstance(exc, UnicodeDecodeError):
        raise ArgumentDecodingError(name, exc) from None
    if isinstance(exc, IndexError):
        raise ArgumentIndexError(msg) from None
    if isinstance(exc, KeyError):
        raise ArgumentKeyError(msg) from None
    if isinstance(exc, RuntimeError) and not isinstance(exc, (NotImplementedError, RecursionError)):
        # torch.as_tensor: "Could not infer dtype of ..."; NotImplementedError is a RuntimeError
        raise UnsupportedValueError(msg) from None
    reraise(exc, name, expected)


def _pb_str(value: Any, name: str, *, none_ok: bool = False) -> str:
    """A value for a protobuf ``string`` field, accepted exactly as upb accepts it.

    str (UTF-8 encodable) or bytes (UTF-8 decodable, str and bytes subclasses
    included); None where torch passes it as a constructor keyword (unset, "").
    """
    if isinstance(value, str):
        check_utf8(value, name)
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArgumentDecodingError(name, exc) from None
    if value is None and none_ok:
        return ""
    raise ArgumentTypeError(f"{name}: expected str, got {type(value).__name__}")


def _pb_double(value: Any, name: str) -> float:
    """A value for a protobuf ``double`` field (``PyFloat_AsDouble``; an ndarray is refused)."""
    if isinstance(value, (str, bytes, np.ndarray)) or value is None:
        raise ArgumentTypeError(f"{name}: expected a real number, got {type(value).__name__}")
    try:
        return float(value)
    except Exception as exc:
        reraise(exc, name, "a real number")


def _make_np(x: Any, name: str) -> np.ndarray:
    """torch's ``make_np``, meta tensors included (torch substitutes ``np.random.randn(1)``)."""
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    if _is_torch_tensor(x):
        import torch

        if x.device.type == "meta":
            return np.random.randn(1)
        if x.dtype == torch.bfloat16:
            x = x.to(torch.float16)  # as torch's _prepare_pytorch: numpy has no bfloat16
        try:
            return x.detach().cpu().numpy()  # type: ignore[no-any-return]
        except Exception as exc:  # float8 / complex32: numpy has no such dtype
            _reraise(exc, name, "a tensor numpy can hold")
    raise UnsupportedValueError(
        f"{name}: expected a number, numpy array or torch tensor, got {type(x).__name__}"
    )


# -- audio ---------------------------------------------------------------------------------

# Sample dtypes the daemon scales itself, exactly as torch does (``(x * 32767).astype("<i2")``
# on the same dtype gives the same samples).  int8/uint8 are absent: torch's
# ``x * 32767`` raises OverflowError for them (NumPy 2).  Anything else takes the slow
# path: the trainer runs torch's own expression and ships the int16 samples.
_AUDIO_DTYPES = frozenset(
    np.dtype(t) for t in ("?", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8")
)
_CLIP_WARNING = "warning: audio amplitude out of range, auto clipped."
_U32 = 0xFFFFFFFF


def _audio_scan(arr: np.ndarray) -> tuple[bool, bool]:
    """``(clip, nan)``: torch's ``abs(array).max() > 1``, and whether a NaN is present.

    Floats: ``max > 1 or min < -1`` is torch's test without allocating
    ``abs(array)``, NaN included (both reductions propagate NaN, and torch's
    ``nan > 1`` is False).  Signed integers: ``abs`` wraps at the minimum, so
    torch's expression is used as is.  An empty array raises numpy's
    ValueError, as in torch.
    """
    kind = arr.dtype.kind
    if kind == "f":
        hi = arr.max()
        return bool(hi > 1 or arr.min() < -1), bool(hi != hi)
    if kind == "b":
        arr.max()  # the empty-array ValueError
        return False, False
    if kind == "u":
        return bool(arr.max() > 1), False
    return bool(np.abs(arr).max() > 1), False


def audio(snd_tensor: Any, sample_rate: Any) -> Payload:
    """Check ``add_audio``'s sound and rate as torch's ``summary.audio`` does, in its order.

    torch: ``make_np``, ``squeeze``, print a warning and clip when
    ``abs(x).max() > 1``, assert one dimension, ``(x * 32767).astype("<i2")``,
    then ``wave`` (``setframerate``: ``int(round(rate))``; any failure inside
    its ``with`` block surfaces as ``wave.Error``; header fields are 32-bit)
    and ``Summary.Audio(sample_rate=float)``.  The print is reproduced here,
    and numpy's cast warnings (NaN samples, complex samples).

    The fast path (bool, 16/32/64-bit ints, floats; 44,100 float32 samples in
    a few microseconds) costs two reductions; the daemon clips, scales and
    writes the WAV.  Other dtypes (int8/uint8, complex, object, longdouble,
    byte-swapped) run torch's own expression here and ship int16 samples.

    Raises:
        UnsupportedValueError: not a number, array or tensor.
        ArgumentValueError: empty (torch: numpy's zero-size reduction error).
        ArgumentShapeError: not one-dimensional after squeeze (torch asserts).
        ArgumentRangeError: int8/uint8 samples (NumPy 2 refuses ``x * 32767``).
        ArgumentTypeError: samples numpy cannot take ``abs`` of (str arrays, None).
        SampleRateError: ``sample_rate`` not a positive number (torch: ``wave.Error``).
        WaveHeaderRangeError: ``sample_rate`` >= 2**31 (torch: ``struct.error``).
    """
    name = "snd_tensor"
    arr = _make_np(snd_tensor, name).squeeze()
    fast = arr.dtype in _AUDIO_DTYPES and arr.dtype.isnative
    try:
        if fast:
            clip, nan = _audio_scan(arr)
        else:
            clip = bool(abs(arr).max() > 1)
        if clip:
            print(_CLIP_WARNING)  # torch prints (not warns) this, before the shape assertion
            if not fast:
                arr = arr.clip(-1, 1)
    except Exception as exc:
        _reraise(exc, name, "real-valued samples")
    if arr.ndim != 1:
        raise ArgumentShapeError(
            f"{name}: expected 1 dimensional samples after squeeze, got shape {arr.shape}"
        )
    if fast:
        if nan:  # torch's astype of NaN samples (never clipped: NaN > 1 is False) warns so
            warnings.warn("invalid value encountered in cast", RuntimeWarning, stacklevel=3)
    else:
        try:
            arr = (arr * np.iinfo(np.int16).max).astype("<i2")
        except Exception as exc:
            _reraise(exc, name, "samples that scale to int16 (floats in [-1, 1])")
    rate = _frame_rate(sample_rate)
    if 36 + 2 * arr.shape[0] > _U32:
        raise WaveHeaderRangeError(f"{name}: {arr.shape[0]} samples exceed a WAV file's 4 GiB")
    try:
        rate_f = float(sample_rate)
    except Exception as exc:
        reraise(exc, "sample_rate", "a number")
    params = {"rate": rate, "sample_rate": rate_f, "clip": clip, "pcm": not fast}
    return params, [arr]


def _frame_rate(sample_rate: Any) -> int:
    """``wave``'s ``setframerate``: refuse <= 0, then ``int(round(rate))``; 32-bit header."""
    try:
        if sample_rate <= 0:
            raise ValueError("not positive")
        rate = int(round(sample_rate))
    except Exception as exc:
        raise SampleRateError(
            f"sample_rate: expected a positive number of Hz, got {sample_rate!r} ({exc})"
        ) from None
    if rate == 0:
        raise SampleRateError(f"sample_rate: {sample_rate!r} rounds to 0 Hz")
    if 2 * rate > _U32:  # the header's byte rate (2 bytes a frame) is a 32-bit field
        raise WaveHeaderRangeError(f"sample_rate: {rate} Hz does not fit a WAV header (< 2**31)")
    return rate


# -- custom scalars ------------------------------------------------------------------------


def custom_scalars(layout: Any) -> Payload:
    """Check a ``{category: {title: [kind, tags]}}`` layout as torch's ``summary.custom_scalars``.

    torch iterates ``layout.items()`` and each category's ``.items()``, reads
    ``spec[1]`` (the tags) then ``spec[0] == "Margin"``; a margin chart needs
    ``len(tags) == 3`` (AssertionError) and takes ``tags[0:3]``; any other kind
    is a multiline chart of ``tags`` (None: no tags; any iterable of str).
    Strings follow protobuf (str or UTF-8 bytes; None where torch passes it as
    a keyword).  Chart contents are checked before the chart title, and charts
    before their category title, as torch's constructors run.

    Returns params ``{"layout": [[category, [[title, margin, tags], ...]], ...]}``.
    """
    name = "layout"
    try:
        categories = layout.items()
    except AttributeError:
        raise ArgumentAttributeError(
            f"{name}: expected a dict {{category: {{title: [kind, tags]}}}}, "
            f"got {type(layout).__name__}"
        ) from None
    out: list[list[Any]] = []
    try:
        for category, charts in categories:
            where = f"{name}[{category!r}]"
            try:
                items = charts.items()
            except AttributeError:
                raise ArgumentAttributeError(
                    f"{where}: expected a dict {{title: [kind, tags]}}, got {type(charts).__name__}"
                ) from None
            converted = []
            for title, spec in items:
                chart = f"{where}[{title!r}]"
                tags = spec[1]
                margin = bool(spec[0] == "Margin")
                tag_list = _margin_tags(tags, chart) if margin else _multiline_tags(tags, chart)
                converted.append([_pb_str(title, f"{chart} title", none_ok=True), margin, tag_list])
            out.append([_pb_str(category, f"{where} category", none_ok=True), converted])
    except Exception as exc:
        _reraise(exc, name, "a dict {category: {title: ['Multiline' or 'Margin', [tags]]}}")
    return {"layout": out}, []


def _margin_tags(tags: Any, where: str) -> list[str]:
    if len(tags) != 3:
        raise ArgumentShapeError(
            f"{where}: a Margin chart needs 3 tags (value, lower, upper), got {len(tags)}"
        )
    value, lower, upper = tags[0], tags[1], tags[2]
    return [
        _pb_str(value, f"{where} value tag", none_ok=True),
        _pb_str(lower, f"{where} lower tag", none_ok=True),
        _pb_str(upper, f"{where} upper tag", none_ok=True),
    ]


def _multiline_tags(tags: Any, where: str) -> list[str]:
    if tags is None:  # protobuf: a repeated field given None stays empty
        return []
    try:
        it = iter(tags)
    except TypeError:
        raise ArgumentTypeError(
            f"{where}: expected an iterable of tags, got {type(tags).__name__}"
        ) from None
    return [_pb_str(t, f"{where} tag") for t in it]


def multiline_layout(tags: Any, category: Any = "default", title: Any = "untitled") -> Any:
    """torch's ``add_custom_scalars_multilinechart`` layout ``{category: {title: [...]}}``.

    Building the dict raises TypeError for an unhashable category or title, as torch's does.
    """
    return _one_chart_layout("Multiline", tags, category, title)


def margin_layout(tags: Any, category: Any = "default", title: Any = "untitled") -> Any:
    """torch's ``add_custom_scalars_marginchart`` layout; it asserts 3 tags first.

    Raises:
        ArgumentShapeError: ``len(tags) != 3`` (torch: AssertionError).
        ArgumentTypeError: ``tags`` has no length, or category/title is unhashable.
    """
    try:
        n = len(tags)
    except TypeError:
        raise ArgumentTypeError(
            f"tags: expected 3 tags (value, lower, upper), got {type(tags).__name__}"
        ) from None
    if n != 3:
        raise ArgumentShapeError(f"tags: a margin chart needs 3 tags, got {n}")
    return _one_chart_layout("Margin", tags, category, title)


def _one_chart_layout(kind: str, tags: Any, category: Any, title: Any) -> Any:
    try:
        hash(category)
    except TypeError:
        raise ArgumentTypeError(f"category: expected str, got {type(category).__name__}") from None
    try:
        hash(title)
    except TypeError:
        raise ArgumentTypeError(f"title: expected str, got {type(title).__name__}") from None
    return {category: {title: [kind, tags]}}


# -- mesh ----------------------------------------------------------------------------------

VERTEX, FACE, COLOR = 1, 2, 3  # MeshPluginData.ContentType
# What torch.as_tensor takes from numpy (anything else: TypeError).
_TORCH_NP_DTYPES = frozenset(
    np.dtype(t)
    for t in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
)


_NO_TAG: Any = object()


def mesh(
    vertices: Any, colors: Any, faces: Any, config_dict: Any, *, tag: Any = _NO_TAG
) -> Payload:
    """Check ``add_mesh``'s arguments as torch's ``summary.mesh``, in its order.

    torch: ``json.dumps(config_dict, sort_keys=True)`` ("{}" for None), then
    for vertices, faces, colors (that order; None ones skipped, the bitmask of
    present parts computed first): ``torch.as_tensor``, a rank-3 check
    (ValueError; only the rank, not the last dimension), the tag as
    ``MeshPluginData.name`` (a protobuf string), and ``tolist()`` into a float
    field (complex: TypeError).  The values become float32 in the daemon;
    arrays go as they are (bfloat16 and float8 as float32, which holds them
    exactly: numpy has neither).

    With ``tag`` (the user's, unconverted), params also carry torch's two
    spellings of it: ``name`` (the plugin data's, None -> "") and ``prefix``
    (the values' tags ``"%s_VERTEX" % tag``: ``None_VERTEX``, ``b'm'_VERTEX``).
    """
    try:
        json_config = "{}" if config_dict is None else json.dumps(config_dict, sort_keys=True)
    except Exception as exc:
        _reraise(exc, "config_dict", "a JSON-serializable dict")
    params: dict[str, Any] = {"json_config": json_config, "parts": []}
    arrays: list[np.ndarray] = []
    for name, x, content in (
        ("vertices", vertices, VERTEX),
        ("faces", faces, FACE),
        ("colors", colors, COLOR),
    ):
        if x is None:
            continue
        source = _mesh_source(x, name)
        if tag is not _NO_TAG and "name" not in params:
            params["name"] = _pb_str(tag, "tag", none_ok=True)
            params["prefix"] = "%s" % (tag,)  # noqa: UP031 - torch's get_instance_name
        params["parts"].append(content)
        arrays.append(_mesh_values(source, name))
    return params, arrays


def _check_rank3(shape: tuple[int, ...], name: str) -> None:
    if len(shape) != 3:
        raise ArgumentValueError(f"{name}: expected shape BxNx3, got {tuple(shape)}")


def _mesh_source(x: Any, name: str) -> Any:
    """What ``torch.as_tensor`` refuses, then the rank check: a numpy array or a tensor."""
    if isinstance(x, np.ndarray):
        if x.dtype.newbyteorder("=") not in _TORCH_NP_DTYPES:
            raise ArgumentTypeError(
                f"{name}: torch cannot convert a numpy array of dtype {x.dtype}; "
                "expected bool, integers or floats"
            )
        if any(s < 0 for s in x.strides):
            raise ArgumentValueError(f"{name}: torch refuses arrays with negative strides; copy")
        if not x.dtype.isnative:
            raise ArgumentValueError(f"{name}: torch refuses arrays in non-native byte order")
    elif not _is_torch_tensor(x):
        try:
            import torch
        except ImportError:  # pragma: no cover - summaryd is a torch drop-in
            raise UnsupportedValueError(
                f"{name}: expected a numpy array (torch is not installed), got {type(x).__name__}"
            ) from None
        try:
            x = torch.as_tensor(x)
        except Exception as exc:
            _reraise(exc, name, "an array-like of numbers")
    _check_rank3(tuple(x.shape), name)
    return x


def _mesh_values(x: Any, name: str) -> np.ndarray:
    """The array to ship for what ``tolist()`` gives torch (complex: protobuf's TypeError)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "c":
            raise ArgumentTypeError(f"{name}: expected real numbers, got {x.dtype}")
        return x
    import torch

    if x.is_complex():
        raise ArgumentTypeError(f"{name}: expected real numbers, got {x.dtype}")
    if x.device.type == "meta":
        raise UnsupportedValueError(f"{name}: a meta tensor has no data")
    x = x.detach()
    if x.dtype == torch.bfloat16 or x.dtype.itemsize == 1 and x.dtype.is_floating_point:
        x = x.float()  # exact; torch's tolist() keeps these values, numpy has no such dtype
    try:
        return x.cpu().numpy()  # type: ignore[no-any-return]
    except Exception as exc:
        _reraise(exc, name, "a tensor of real numbers")


# -- hparams -------------------------------------------------------------------------------


def hparams(
    hparam_dict: Any, metric_dict: Any, hparam_domain_discrete: Any = None
) -> tuple[dict[str, Any], list[tuple[str, float]]]:
    """Check ``add_hparams``' dicts as torch's writer and ``summary.hparams`` do, in order.

    torch: both dicts must be exactly ``dict`` (TypeError); the domains
    (``hparam_domain_discrete or {}``) a dict whose every key is an hparam and
    every value a list of instances of that hparam's type (TypeError); each
    hparam, None skipped: int/float **and bool** (a bool is an int, so torch's
    bool branch is never reached: bools are FLOAT64 1.0/0.0) -> number, str ->
    string, tensor -> ``make_np(v)[0]`` as a number (no domain), anything
    else ValueError.  Names and strings follow protobuf (str or UTF-8 bytes).

    Unlike torch, which writes the three hparams summaries before
    ``add_scalar`` meets a bad metric value, every metric is checked here first
    (``convert.to_tag``/``to_scalar``), so a failing call writes nothing.

    Returns:
        ``(params, [(metric tag, value), ...])`` in ``metric_dict`` order.
    """
    if type(hparam_dict) is not dict or type(metric_dict) is not dict:
        raise ArgumentTypeError(
            "hparam_dict and metric_dict: expected dict, got "
            f"{type(hparam_dict).__name__} and {type(metric_dict).__name__}"
        )
    try:
        domains = hparam_domain_discrete or {}
    except Exception as exc:
        _reraise(exc, "hparam_domain_discrete", "a dict {name: [values]}")
    if not isinstance(domains, dict):
        raise ArgumentTypeError(
            "hparam_domain_discrete: expected a dict {name: [values]}, "
            f"got {type(domains).__name__}"
        )
    for k, v in domains.items():
        if (
            k not in hparam_dict
            or not isinstance(v, list)
            or not all(isinstance(d, type(hparam_dict[k])) for d in v)
        ):
            raise ArgumentTypeError(
                f"hparam_domain_discrete[{k!r}]: expected a list of values of the same type "
                f"as hparam_dict[{k!r}]"
            )
    entries = [e for k, v in hparam_dict.items() if (e := _hparam(k, v, domains)) is not None]
    metric_names = [_pb_str(k, "metric_dict key", none_ok=True) for k in metric_dict]
    scalars = [
        (to_tag(k, "metric_dict key"), to_scalar(v, f"metric_dict[{k!r}]"))
        for k, v in metric_dict.items()
    ]
    return {"hparams": entries, "metrics": metric_names}, scalars


def _hparam(key: Any, value: Any, domains: dict[Any, Any]) -> list[Any] | None:
    where = f"hparam_dict[{key!r}]"
    if value is None:
        return None
    if isinstance(value, (int, float)):
        name = _pb_str(key, "hparam_dict key")
        number = _pb_double(value, where)
        domain = None
        if key in domains:
            domain = [_pb_double(d, f"hparam_domain_discrete[{key!r}]") for d in domains[key]]
        return [name, "number", number, domain]
    if isinstance(value, str):
        name = _pb_str(key, "hparam_dict key")
        text = _pb_str(value, where)
        strings = None
        if key in domains:
            strings = [_pb_str(d, f"hparam_domain_discrete[{key!r}]") for d in domains[key]]
        return [name, "string", text, strings]
    if _is_torch_tensor(value):
        import torch

        if isinstance(value, torch.Tensor):
            try:
                first = _make_np(value, where)[0]
            except Exception as exc:
                _reraise(exc, where, "a tensor with at least one element")
            name = _pb_str(key, "hparam_dict key")
            return [name, "number", _pb_double(first, where), None]
    raise ArgumentValueError(
        f"{where}: value should be one of int, float, str, bool, or torch.Tensor, "
        f"got {type(value).__name__}"
    )
