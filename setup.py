"""Installs the startup hook ``summaryd-patch.pth`` at the root of site-packages.

Everything else is declared in pyproject.toml.  A ``.pth`` file must sit in
site-packages itself, where no package file goes, and setuptools' editable
installs leave out ``.pth`` files declared as data files; so ``build_py``
puts it next to the packages: in the build directory for a wheel, and in the
editable wheel's root (``install_lib``, which setuptools' ``editable_wheel``
points at the unpacked wheel) for ``pip install -e``.  A test checks both.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = "summaryd-patch.pth"
SOURCE = os.path.join("sdk", PTH)


class BuildPyWithStartupHook(build_py):
    """``build_py`` that also places the startup hook's ``.pth`` file."""

    def run(self) -> None:
        super().run()
        self.copy_file(SOURCE, os.path.join(self._pth_dir(), PTH), preserve_mode=False)

    def _pth_dir(self) -> str:
        if getattr(self, "editable_mode", False):
            return str(self.get_finalized_command("install").install_lib)
        return str(self.build_lib)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH))
        return outputs


# The daemon's scalar/text hot path in C (daemon/batch.py falls back to the Python
# encoders without it): optional, so an install without a compiler still works.
BATCH = Extension(
    "summaryd.daemon._batch",
    sources=["daemon/_batch.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

# The consumer's ring record loop in C (sdk/ring.py runs its Python loop without it).
RINGSCAN = Extension(
    "summaryd._ringscan",
    sources=["sdk/_ringscan.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

# The default histogram buckets' counting loop in C (daemon/buckets.py counts with
# numpy without it, ~4x slower).
BUCKETS = Extension(
    "summaryd.daemon._buckets",
    sources=["daemon/_buckets.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

setup(cmdclass={"build_py": BuildPyWithStartupHook}, ext_modules=[BATCH, RINGSCAN, BUCKETS])
