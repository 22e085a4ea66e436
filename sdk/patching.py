"""``summaryd.patch()``: torch's and tensorboardX's writers log through summaryd.

Theory of operation
-------------------
Frameworks construct the writer themselves, by looking up
``torch.utils.tensorboard.SummaryWriter`` (or tensorboardX's) when they need
it, or by importing the class at module level.  ``patch()`` meets both:

* the module attributes in ``TARGETS`` become summaryd's classes, in modules
  already imported at once, and in the others the moment they are imported
  (a ``sys.meta_path`` finder runs the module, then patches it: nothing is
  imported early, so ``SUMMARYD_PATCH=1`` costs a process that never logs
  nothing but the import of this package);
* the original classes, which a module may have captured before the patch,
  keep their own methods but get a ``_get_file_writer`` (``CLASS_PATCHES``)
  that returns summaryd's ``FileWriter``: their events go through the ring
  and the daemon too, into one file per run, with ``purge_step`` handled by
  the daemon (instead of the version/START pair torch writes by hand).

``unpatch()`` puts every original back and removes the finder.  Both are
idempotent and thread-safe.  ``SUMMARYD_PATCH=1`` patches at interpreter
start: the ``summaryd-patch.pth`` file installed with the package reads the
variable and imports this module only when it is set (``"0"`` or empty: off).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

ENV = "SUMMARYD_PATCH"


def _torch_writer() -> type:
    from .writer import SummaryWriter

    return SummaryWriter


def _torch_file_writer() -> type:
    from .file_writer import FileWriter

    return FileWriter


def _tbx_writer() -> type:
    from .tensorboardx import SummaryWriter

    return SummaryWriter


def _tbx_file_writer() -> type:
    from .tensorboardx import FileWriter

    return FileWriter


# Module -> {attribute: summaryd's replacement (made on first use)}.
TARGETS: dict[str, dict[str, Callable[[], type]]] = {
    "torch.utils.tensorboard.writer": {
        "SummaryWriter": _torch_writer,
        "FileWriter": _torch_file_writer,
    },
    "torch.utils.tensorboard": {"SummaryWriter": _torch_writer, "FileWriter": _torch_file_writer},
    "tensorboardX.writer": {"SummaryWriter": _tbx_writer, "FileWriter": _tbx_file_writer},
    "tensorboardX": {"SummaryWriter": _tbx_writer, "FileWriter": _tbx_file_writer},
}


def _torch_get_file_writer(self: Any) -> Any:
    """torch's ``SummaryWriter._get_file_writer``, with summaryd's FileWriter."""
    if self.all_writers is None or self.file_writer is None:
        self.file_writer = _torch_file_writer()(
            self.log_dir,
            self.max_queue,
            self.flush_secs,
            self.filename_suffix,
            purge_step=self.purge_step,
        )
        self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
        self.purge_step = None  # the daemon purges once, as torch writes the pair once
    return self.file_writer


def _tbx_get_file_writer(self: Any) -> Any:
    """tensorboardX's ``SummaryWriter._get_file_writer``, with summaryd's FileWriter."""
    if not self._write_to_disk:
        return self._summaryd_original_get_file_writer()
    if self.all_writers is None or self.file_writer is None:
        self.file_writer = _tbx_file_writer()(
            logdir=self.logdir,
            max_queue=self._max_queue,
            flush_secs=self._flush_secs,
            filename_suffix=self._filename_suffix,
            purge_step=self.purge_step,
        )
        self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
        self.purge_step = None
    return self.file_writer


# Module -> (class attribute, method name, replacement): applied to the class the
# module defines (saved before TARGETS replace the module's attribute).
CLASS_PATCHES: dict[str, tuple[str, str, Callable[..., Any]]] = {
    "torch.utils.tensorboard.writer": ("SummaryWriter", "_get_file_writer", _torch_get_file_writer),
    "tensorboardX.writer": ("SummaryWriter", "_get_file_writer", _tbx_get_file_writer),
}

_lock = threading.RLock()
_saved: dict[tuple[str, str], Any] = {}  # (module, attribute) -> original
_saved_methods: dict[tuple[type, str], Any] = {}  # (class, method) -> original
_finder: _PatchingFinder | None = None


def _apply(name: str, module: ModuleType) -> None:
    """Patch one module (called with the lock held, or by the finder under the import lock)."""
    with _lock:
        if _finder is None:  # unpatched meanwhile
            return
        cls_patch = CLASS_PATCHES.get(name)
        if cls_patch is not None:
            attr, method, replacement = cls_patch
            original_cls = _saved.get((name, attr), getattr(module, attr, None))
            if isinstance(original_cls, type) and (original_cls, method) not in _saved_methods:
                _saved_methods[original_cls, method] = original_cls.__dict__.get(method)
                setattr(
                    original_cls, "_summaryd_original_" + method, original_cls.__dict__.get(method)
                )
                setattr(original_cls, method, replacement)
        for attr, make in TARGETS[name].items():
            replacement = make()
            if (name, attr) not in _saved:
                current = getattr(module, attr, None)
                if current is replacement:
                    # A package that imported the class from its patched writer
                    # module: the original is the one saved there.
                    current = next(
                        (v for (n, a), v in _saved.items() if a == attr and TARGETS[n][a] is make),
                        None,
                    )
                _saved[name, attr] = current
            setattr(module, attr, replacement)


class _PatchingLoader(importlib.abc.Loader):
    """Runs a target module with its own loader, then patches it."""

    def __init__(self, name: str, loader: Any) -> None:
        self._name = name
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        # Restore the module's real loader first: importlib.resources and friends
        # ask it for package data.
        spec = module.__spec__
        if spec is not None:
            spec.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        _apply(self._name, module)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Finds target modules with the other finders and wraps their loader."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in TARGETS or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname  # the other finders, not this one, find it
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(fullname, spec.loader)
        return spec


def patch() -> None:
    """Make torch's and tensorboardX's ``SummaryWriter`` summaryd's.

    After it, ``torch.utils.tensorboard.SummaryWriter`` (and ``.writer``'s)
    is ``summaryd.SummaryWriter``, ``tensorboardX.SummaryWriter`` is
    ``summaryd.tensorboardx.SummaryWriter`` (when tensorboardX is installed),
    and a torch or tensorboardX writer class captured before the patch writes
    through summaryd's ``FileWriter``.  Modules imported later are patched
    as they are imported.  Idempotent and thread-safe; ``unpatch()`` undoes it.
    """
    global _finder
    with _lock:
        if _finder is not None:
            return
        _finder = _PatchingFinder()
        sys.meta_path.insert(0, _finder)
        for name in TARGETS:  # in table order: a package's writer module first
            module = sys.modules.get(name)
            if module is not None:
                _apply(name, module)


def unpatch() -> None:
    """Put back every class and method ``patch()`` replaced (idempotent, thread-safe)."""
    global _finder
    with _lock:
        if _finder is None:
            return
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None
        for (name, attr), original in _saved.items():
            module = sys.modules.get(name)
            if module is not None:
                setattr(module, attr, original)
        for (cls, method), original in _saved_methods.items():
            if original is None:
                delattr(cls, method)
            else:
                setattr(cls, method, original)
            delattr(cls, "_summaryd_original_" + method)
        _saved.clear()
        _saved_methods.clear()


def startup_hook_path() -> str | None:
    """Where this interpreter's ``summaryd-patch.pth`` is, or None if it has none."""
    import os
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    for d in dirs:
        path = os.path.join(d, "summaryd-patch.pth")
        if os.path.exists(path):
            return path
    return None


def is_patched() -> bool:
    """Whether ``patch()`` is in force."""
    return _finder is not None
