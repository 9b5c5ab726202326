"""Import bert-score without the plotting and table libraries it never uses for scoring.

``bert_score/score.py`` and ``bert_score/scorer.py`` import ``matplotlib.pyplot``,
``mpl_toolkits.axes_grid1`` and ``pandas`` at module level, for ``plot_example`` and for
reading the baseline-rescaling CSV. qaflow scores with neither, yet importing them is about a
third of the CPU time of ``import bert_score`` (``python -X importtime -c "import bert_score"``
on the 2-core machine of issue 13: torch 4.8 s, matplotlib.pyplot 3.8 s, pandas 2.9 s,
transformers 1.3 s of 13.3 s), and that import sits between the first LLM answer and the first
score of ``qaflow run``.

:func:`import_bert_score` imports torch and transformers first, then bert-score while
stand-in modules take the place of those three in ``sys.modules``; the stand-ins leave
``sys.modules`` as soon as bert-score is in. bert-score keeps them as its ``pd`` and ``plt``,
and each loads the real module on its first attribute access, so ``plot_example`` and
``rescale_with_baseline=True`` still work; anyone else importing pandas or matplotlib later
gets the real module. Scores are unchanged: model, tokenizer and scoring code are bert-score's.

(The standard library's ``importlib.util.LazyLoader`` does not fit: on Python 3.11 every
``import`` statement of a lazy module reads its ``__spec__`` and so loads it.)

:func:`uncached_bytecode` names the packages of the import that have no ``.pyc`` to load from.
Python then compiles their sources on every import, which it does wherever it may not write
the cache (``PYTHONDONTWRITEBYTECODE=1``, common in containers and set on the machine of issue
13): there the scorer's import and model build took 2-3x the time they take from bytecode
(docs/performance.md, "Time to first score"). ``make install`` writes the bytecode at install
(uv's ``--compile-bytecode``, for the packages it installs); the import logs which packages
lack it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
import time
import types
from typing import Any

logger = logging.getLogger(__name__)

DEFERRED = ("pandas", "matplotlib", "matplotlib.pyplot", "mpl_toolkits.axes_grid1")
_window = threading.RLock()  # held while the stand-ins are in sys.modules


class Deferred(types.ModuleType):
    """Stands for module ``__name__``; the real module is imported on first attribute access."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        with _window:  # another thread may import bert-score right now: wait until the stand-ins are gone
            real = importlib.import_module(self.__name__)
        if real is self:
            msg = f"{self.__name__} is still deferred"
            raise ImportError(msg)
        return getattr(real, attr)


def _make_axes_locatable(*args: Any, **kwargs: Any) -> Any:
    from mpl_toolkits.axes_grid1 import axes_divider  # type: ignore[import-untyped]

    return axes_divider.make_axes_locatable(*args, **kwargs)


def _stand_ins() -> dict[str, Deferred]:
    """One :class:`Deferred` per module of DEFERRED not imported yet, wired like the real ones."""
    out: dict[str, Deferred] = {}
    for name in DEFERRED:
        if name in sys.modules:
            continue
        parent = name.rpartition(".")[0]
        if parent and parent in out:
            spec = out[parent].__spec__
            locations = spec.submodule_search_locations if spec else None
            found = importlib.machinery.PathFinder.find_spec(name, list(locations or []))
        else:
            try:
                found = importlib.util.find_spec(name)  # for a submodule, imports its (cheap) parent
            except (ImportError, ValueError):
                found = None
        if found is None:
            continue
        module = Deferred(name)
        module.__spec__ = found  # find_spec() on the stand-in answers as for the real module
        out[name] = module
    if "matplotlib" in out and "matplotlib.pyplot" in out:
        setattr(out["matplotlib"], "pyplot", out["matplotlib.pyplot"])  # noqa: B010 (import matplotlib.pyplot as plt)
    elif "matplotlib.pyplot" in out:
        del out["matplotlib.pyplot"]
    if "mpl_toolkits.axes_grid1" in out:
        setattr(out["mpl_toolkits.axes_grid1"], "make_axes_locatable", _make_axes_locatable)  # noqa: B010
    return out


def import_bert_score() -> types.ModuleType:
    """``import bert_score`` without importing pandas and matplotlib (see the module docstring)."""
    if "bert_score" in sys.modules:
        return sys.modules["bert_score"]
    began = time.perf_counter()
    # torch and transformers first and in full: their imports ask find_spec about optional packages.
    importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    for name in ("AutoModel", "AutoTokenizer"):  # resolves transformers' own lazy modules now
        getattr(transformers, name)
    with _window:
        if "bert_score" in sys.modules:
            return sys.modules["bert_score"]
        stand_ins = _stand_ins()
        sys.modules.update(stand_ins)
        try:
            module = importlib.import_module("bert_score")
        finally:
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
    logger.debug("imported bert_score in %.1fs (deferred: %s)", time.perf_counter() - began,
                 ", ".join(stand_ins) or "none")
    missing = uncached_bytecode(BYTECODE_CHECKED)
    if missing:
        logger.info("no bytecode cache for %s (PYTHONDONTWRITEBYTECODE=%s): compiled from source on every run, "
                    "2-3x the import time; a fresh `make install` writes it (uv pip install --compile-bytecode); "
                    "for this environment: python -m compileall -q -j 0 %s", ", ".join(missing),
                    os.environ.get("PYTHONDONTWRITEBYTECODE", ""), os.path.dirname(os.path.dirname(
                        sys.modules[missing[0]].__file__ or ".")))
    return module


BYTECODE_CHECKED = ("torch", "transformers", "bert_score")


def uncached_bytecode(names: tuple[str, ...]) -> list[str]:
    """The imported modules of ``names`` whose source has no bytecode cache file.

    The cache file is ``__spec__.cached`` (``__pycache__/<name>.cpython-311.pyc`` next to the
    source, or under ``sys.pycache_prefix`` when ``PYTHONPYCACHEPREFIX`` is set). After an import
    it is missing only where Python could not or may not write it; such a module is compiled
    from source again by every process that imports it. Modules not imported, or without a
    source file (built-in, extension, namespace), are not listed.
    """
    missing = []
    for name in names:
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if spec is None or not spec.has_location or not spec.cached or not str(spec.origin).endswith(".py"):
            continue
        if not os.path.exists(spec.cached):
            missing.append(name)
    return missing


def import_in_background() -> threading.Thread:
    """Start :func:`import_bert_score` on a daemon thread; errors surface at the real load."""

    def work() -> None:
        try:
            import_bert_score()
        except Exception as exc:  # the scorer's start() imports again and reports it
            logger.debug("background import of bert_score failed: %s", exc)

    thread = threading.Thread(target=work, name="bert-score-import", daemon=True)
    thread.start()
    return thread
