"""Your own model: :class:`TorchTask`, and the ``module:function`` factory that builds one.

A user writes ``make_task(seed: int, **options) -> TorchTask`` in a module of their own and
names it in the config (``[problem] kind = "torch"``, ``factory = "tasks:make_task"``).  The
module is looked up next to the config file first, then on ``sys.path``.  Nothing here imports
torch: a task holds torch objects, but this module only moves them around.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sspsim.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TaskFactory", "TorchTask", "build_task", "cross_entropy", "dataset_tensors", "factory_ref", "load_factory", "parse_factory",
]

FIELD = "problem.factory"


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The default loss: mean softmax cross-entropy of logits ``output`` against class ``target``."""
    import torch.nn.functional as F

    return F.cross_entropy(output, target)


@dataclass(frozen=True)
class TorchTask:
    """A model, its training data, its loss, and optionally a test set.

    * ``model``: a ``torch.nn.Module``; its trainable parameters, in ``named_parameters`` order,
      are the flat parameter vector the parameter server holds.
    * ``train``: a map-style ``torch.utils.data.Dataset`` of ``(input, target)`` pairs, or a pair
      of tensors ``(inputs, targets)`` with the samples along the first dimension.
    * ``loss``: ``(output, target) -> scalar``, the mean over the batch (default cross-entropy).
    * ``test``: like ``train``; when given, ``evals.csv`` reports the accuracy on it.
    """

    model: torch.nn.Module
    train: Any
    loss: Callable[[Any, Any], Any] = cross_entropy
    test: Any = None


TaskFactory = Callable[..., TorchTask]


def parse_factory(spec: object, where: str = FIELD) -> tuple[str, str]:
    """``"module:function"`` -> ``(module, function)``; anything else is one line of InputError."""
    rule = "must name a factory as 'module:function', e.g. 'tasks:make_task'"
    if not isinstance(spec, str):
        raise InputError(where, spec, rule)
    module, sep, function = spec.partition(":")
    names = [*module.split("."), function]
    if not sep or not all(n.isidentifier() for n in names):
        raise InputError(where, spec, rule)
    return module, function


_LOADED: dict[tuple[Path, int], ModuleType] = {}


def _import_module(module: str, folder: Path | None) -> ModuleType:
    """The module named ``module``, from ``folder`` if a file of that name is there, else sys.path.

    A module found next to the config is loaded from its file under a name unique to that file,
    so two configs whose modules share a name (``tasks``) each get their own.
    """
    parts = module.split(".")
    candidates = []
    if folder is not None:
        base = folder.joinpath(*parts)
        candidates = [base.with_suffix(".py"), base / "__init__.py"]
    path = next((p.resolve() for p in candidates if p.is_file()), None)
    try:
        if path is None:
            return importlib.import_module(module)
        key = (path, path.stat().st_mtime_ns)  # an edited module is loaded again
        if key in _LOADED:
            return _LOADED[key]
        if len(parts) > 1:  # inside a package next to the config: import it as a package
            assert folder is not None
            sys.path.insert(0, str(folder))
            try:
                mod = importlib.import_module(module)
            finally:
                sys.path.remove(str(folder))
        else:
            name = f"_sspsim_task_{parts[0]}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            sys.path.insert(0, str(path.parent))  # the module's own siblings import too
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del sys.modules[name]
                raise
            finally:
                sys.path.remove(str(path.parent))
        _LOADED[key] = mod
        return mod
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            where = f"next to the config ({folder}) or " if folder is not None else ""
            raise InputError(FIELD, module, f"module not found {where}on sys.path") from None
        raise InputError(FIELD, module, f"importing the module failed: {_one_line(exc)}") from None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(FIELD, module, f"importing the module failed: {_one_line(exc)}") from None


def load_factory(spec: str, folder: str | Path | None = None) -> TaskFactory:
    """The function ``spec = "module:function"`` names (module next to ``folder`` first, then sys.path)."""
    module, function = parse_factory(spec)
    mod = _import_module(module, None if folder is None else Path(folder))
    fn = getattr(mod, function, None)
    if fn is None:
        raise InputError(FIELD, spec, f"module {module!r} has no attribute {function!r}")
    if not callable(fn):
        raise InputError(FIELD, spec, f"{function!r} is a {type(fn).__name__}, not a function")
    return fn  # type: ignore[no-any-return]


def build_task(factory: TaskFactory, seed: int, options: dict[str, Any] | None = None, *, name: str | None = None) -> TorchTask:
    """``factory(seed, **options)``, with torch's global generator seeded by ``seed`` meanwhile
    (so a factory that forgets to seed still builds the same model every time)."""
    import torch

    label = name or getattr(factory, "__name__", repr(factory))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            task = factory(seed, **(options or {}))
        except Exception as exc:
            raise InputError(FIELD, label, f"calling it with seed = {seed} and options {options or {}} failed: {_one_line(exc)}") from None
    if not isinstance(task, TorchTask):
        raise InputError(FIELD, label, f"must return an sspsim.TorchTask, not {type(task).__name__}")
    return task


def factory_ref(factory: object) -> tuple[str, str] | None:
    """``("module:function", folder)`` that :func:`load_factory` finds ``factory`` again by, or
    None for a function no import reaches (defined in ``__main__``, a lambda, a closure)."""
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        return None
    try:
        file = inspect.getfile(factory)  # type: ignore[arg-type]
    except TypeError:
        return None
    path = Path(file).resolve()
    if module.startswith("_sspsim_task_"):  # loaded by load_factory from next to a config
        return f"{path.stem}:{name}", str(path.parent)
    depth = len(module.split(".")) - (0 if path.name == "__init__.py" else 1)
    return f"{module}:{name}", str(path.parents[depth])


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def dataset_tensors(data: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` stacked along a first sample dimension, on the CPU, from a pair of
    tensors or a map-style dataset of ``(input, target)`` pairs."""
    import torch

    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        inputs, targets = data
        if inputs.ndim == 0 or targets.ndim == 0 or len(inputs) != len(targets):
            raise InputError(where, f"({tuple(inputs.shape)}, {tuple(targets.shape)})",
                             "a pair (inputs, targets) needs the same number of samples along the first dimension")
        return inputs.detach().cpu(), targets.detach().cpu()
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise InputError(where, type(data).__name__, "must be a map-style Dataset of (input, target) pairs or a pair of tensors")
    n = len(data)
    if n == 0:
        raise InputError(where, "<empty>", "needs at least one sample")
    try:
        pairs = [data[i] for i in range(n)]
        inputs = torch.stack([torch.as_tensor(a) for a, _ in pairs])
        targets = torch.stack([torch.as_tensor(b) for _, b in pairs])
    except Exception as exc:
        raise InputError(where, type(data).__name__, f"its samples must be (input, target) pairs of equal shapes: {_one_line(exc)}") from None
    return inputs.detach().cpu(), targets.detach().cpu()
