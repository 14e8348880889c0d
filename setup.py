"""Wheels carry the bundled WASM tools, built from ``wasm_plugins/`` when the wheel is built.

Everything else about the package is in ``pyproject.toml``. A wheel (``pip
install .``, ``pip wheel .``) gets ``exoclaw_core/wasm/{echo,kv}.wasm``, compiled
offline by the ``ziglang`` build requirement, so ``exoclaw init`` finds working
tools without a checkout. An editable install (``pip install -e .``) builds
nothing here: ``exoclaw init`` builds them in the checkout's ``wasm_plugins/build``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: the everyday tools ``exoclaw init`` offers (exoclaw_core.cli.init_cmd.BUNDLED)
BUNDLED_TOOLS = ["echo", "kv"]


class BuildPyWithTools(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        spec = importlib.util.spec_from_file_location("exoclaw_wasm_build", HERE / "wasm_plugins" / "build.py")
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        out = Path(self.build_lib) / "exoclaw_core" / "wasm"
        builder.build_all(out, names=BUNDLED_TOOLS)
        for stamp in out.glob(".*"):  # the build's own bookkeeping is not package data
            stamp.unlink()


setup(cmdclass={"build_py": BuildPyWithTools})
