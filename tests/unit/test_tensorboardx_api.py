"""summaryd.tensorboardx.SummaryWriter's surface against tensorboardX 2.6.5's (no daemon)."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

from summaryd.errors import (
    ArgumentTypeError,
    SummarydError,
    UnsupportedFeatureError,
)
from summaryd.tensorboardx import FileWriter, SummaryWriter, clean_tag

tbx = pytest.importorskip("tensorboardX")


def _public(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)))


def _params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_every_public_tensorboardx_method_is_there() -> None:
    missing = set(_public(tbx.SummaryWriter)) - set(_public(SummaryWriter))
    assert not missing, f"tensorboardX methods summaryd lacks: {sorted(missing)}"


@pytest.mark.parametrize("name", ["__init__", *_public(tbx.SummaryWriter)])
def test_signatures_match_tensorboardx(name: str) -> None:
    ours = getattr(SummaryWriter, name)
    assert _params(ours) == _params(getattr(tbx.SummaryWriter, name)), name
    assert ours.__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("name", ["__init__", *_public(tbx.FileWriter)])
def test_file_writer_signatures_match_tensorboardx(name: str) -> None:
    assert hasattr(FileWriter, name), name
    ours = _params(getattr(FileWriter, name))
    if name == "__init__":
        # One extra keyword-only parameter: summaryd's patched tensorboardX
        # SummaryWriter hands its purge_step to the daemon through FileWriter
        # instead of writing torch's file_version/SessionLog.START pair.
        assert ours[-1] == ("purge_step", inspect.Parameter.KEYWORD_ONLY, None)
        ours = ours[:-1]
    assert ours == _params(getattr(tbx.FileWriter, name)), name


def test_clean_tag_matches_tensorboardx() -> None:
    from tensorboardX.summary import _clean_tag

    for tag in ["a/b", "a b$c", "/lead/x", "ünï.-_", "//", "x\ty", ""]:
        assert clean_tag(tag) == _clean_tag(tag), tag


# -- constructor, without a daemon: write_to_disk=False writes nothing ---------------------


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any attempt to reach or spawn a daemon would fail loudly in this environment."""
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    monkeypatch.setenv("SUMMARYD_RUNTIME_DIR", str(tmp_path / "rt-none"))
    monkeypatch.chdir(tmp_path)


def test_write_to_disk_false_creates_nothing(no_daemon: None, tmp_path: Path) -> None:
    import numpy as np

    from summaryd import client

    logdir = tmp_path / "never"
    before = client._client
    with SummaryWriter(str(logdir), write_to_disk=False, unknown_kw=1) as w:
        w.add_scalar("s", 0.1, 0)
        w.add_scalar("s", 0.1, 0, display_name="d")
        w.add_scalars("m", {"a": 0.1, "b": 0.2}, 0)
        w.add_text("t", "x", 0)
        w.add_histogram("h", np.arange(10.0), 0)
        w.add_image("i", np.zeros((3, 4, 4)), 0)
        w.add_hparams({"lr": 0.1}, {"acc": 1.0}, name="hp")
        w.add_mesh("m", np.zeros((1, 3, 3)))
        w.flush()
        assert w.file_writer is not None and w.all_writers is not None
    assert not logdir.exists()
    assert client._client is before  # no client (no ring, no daemon) was made for it
    assert w.scalar_dict[os.path.join(str(logdir), "m", "a")][0][1:] == [0, 0.1]
    # Bad input still raises, as tensorboardX's summary functions run anyway.
    w2 = SummaryWriter(str(logdir), write_to_disk=False)
    with pytest.raises(ValueError):
        w2.add_scalar("s", np.zeros(3), 0)
    with pytest.raises(TypeError):
        w2.add_hparams([], {})  # type: ignore[arg-type]
    assert not logdir.exists()


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"logdir": "a"}, "a"),
        ({"log_dir": "b"}, "b"),
        ({"logdir": "a", "log_dir": "b"}, "a"),
    ],
)
def test_logdir_aliases(no_daemon: None, kwargs: dict[str, str], expected: str) -> None:
    w = SummaryWriter(write_to_disk=False, **kwargs)  # type: ignore[arg-type]
    assert w.logdir == expected
    assert w.file_writer is not None and w.file_writer.get_logdir() == expected
    ref = tbx.SummaryWriter(write_to_disk=False, **kwargs)
    assert ref.logdir == w.logdir


def test_default_logdir_and_attributes(no_daemon: None) -> None:
    w = SummaryWriter(comment="_c", write_to_disk=False)
    ref = tbx.SummaryWriter(comment="_c", write_to_disk=False)
    assert os.path.dirname(str(w.logdir)) == "runs" and str(w.logdir).endswith("_c")
    assert w.default_bins == ref.default_bins
    assert w.scalar_dict == ref.scalar_dict == {}
    assert w.kwargs == ref.kwargs == {}
    assert w.purge_step is None


def test_unknown_kwargs_raise_type_error(no_daemon: None) -> None:
    with pytest.raises(TypeError) as ref:
        tbx.SummaryWriter("x", bogus=1)
    with pytest.raises(ArgumentTypeError, match="bogus"):
        SummaryWriter("x", bogus=1)
    assert ref.type is TypeError


@pytest.mark.parametrize(
    "config", [{"disabled": False}, {"api_key": "k"}, {"disabled": "no"}], ids=str
)
def test_enabled_comet_config_is_refused(no_daemon: None, config: dict[str, object]) -> None:
    with pytest.raises(UnsupportedFeatureError, match="comet_config.*does not send to Comet"):
        SummaryWriter("x", comet_config=config, write_to_disk=False)
    assert issubclass(UnsupportedFeatureError, (SummarydError, NotImplementedError))


def test_openvino_without_tensorboardx_names_the_method(
    no_daemon: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX.openvino_graph", None)
    w = SummaryWriter("x", write_to_disk=False)
    with pytest.raises(UnsupportedFeatureError, match="add_openvino_graph"):
        w.add_openvino_graph("model.xml")


def test_use_metadata_rules(no_daemon: None) -> None:
    w = SummaryWriter("x", write_to_disk=False)
    with pytest.raises(ValueError, match="at least one"), w.use_metadata():
        pass
    with w.use_metadata(global_step=3):
        assert w._meta(None, None) == (3, None)
        assert w._meta(7, 1.5) == (7, 1.5)
        with pytest.raises(ValueError, match="already set"), w.use_metadata(walltime=1.0):
            pass
    assert w._meta(None, None) == (None, None)


def test_embedding_images_must_be_square(no_daemon: None) -> None:
    import numpy as np

    w = SummaryWriter("x", write_to_disk=False)
    with pytest.raises(AssertionError, match="square"):
        w.add_embedding(np.zeros((2, 3)), label_img=np.zeros((2, 3, 4, 5)))


def test_importing_summaryd_does_not_load_this_module() -> None:
    import subprocess

    code = "import sys, summaryd; print('summaryd.tensorboardx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
