"""The one bridge between pluggy (synchronous) and the asyncio core.

Every hook call of the core goes through here. Implementations may be plain
functions or ``async def`` (for contribution/observer hooks), and decision
hooks may return an awaitable. Observers are isolated: one that raises is
logged with its plugin's name and the others still run.

pluggy itself calls implementations synchronously; an ``async def``
implementation therefore yields a coroutine object, which we await here. To
isolate one implementation from another we call them one by one through
``hook.get_hookimpls()`` instead of ``hook(...)``, mirroring pluggy's own
argument binding (an implementation may take any subset of the spec's
arguments).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pluggy

log = logging.getLogger("exoclaw.hooks")


async def await_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (datasette's ``await_me_maybe``)."""
    if inspect.isawaitable(value):
        return await value
    return value


def _impls(pm: pluggy.PluginManager, name: str) -> list[Any]:
    hook = getattr(pm.hook, name)
    # pluggy calls the last registered first (LIFO), tryfirst/trylast respected
    return list(reversed(hook.get_hookimpls()))


def _call_impl(impl: Any, kwargs: dict[str, Any]) -> Any:
    args = [kwargs[a] for a in impl.argnames]
    return impl.function(*args)


class HookError(Exception):
    """An implementation raised; ``plugin`` names it, ``__cause__`` is the error."""

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin, self.hook, self.error = plugin, hook, error
        super().__init__(f"plugin {plugin} failed in {hook}: {error}")


async def call_all(
    pm: pluggy.PluginManager, name: str, *, isolate: bool = True, concurrent: bool = False, **kwargs: Any
) -> list[Any]:
    """Call every implementation of a contribution/observer hook; return the non-``None`` results.

    With ``isolate`` (the default) an implementation that raises is logged with
    its plugin's name and skipped; without it the first exception propagates
    (``before_llm_call``: a refusal must stop the call). ``concurrent`` awaits
    the implementations together (``assemble_context``: the memory layers do
    I/O independently); results keep the implementations' order either way.
    """
    impls = _impls(pm, name)
    if concurrent and len(impls) > 1:
        values = await asyncio.gather(
            *(_one(impl, name, kwargs, isolate) for impl in impls), return_exceptions=not isolate
        )
        for value in values:
            if isinstance(value, BaseException):
                raise value
        return [v for v in values if v is not None and v is not _FAILED]
    results: list[Any] = []
    for impl in impls:
        value = await _one(impl, name, kwargs, isolate)
        if value is not None and value is not _FAILED:
            results.append(value)
    return results


_FAILED = object()


async def _one(impl: Any, name: str, kwargs: dict[str, Any], isolate: bool) -> Any:
    try:
        return await await_maybe(_call_impl(impl, kwargs))
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        if not isolate:
            raise
        log.error(
            "event=plugin_error plugin=%s hook=%s error=%s",
            impl.plugin_name,
            name,
            _one_line(exc),
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return _FAILED


async def call_pipeline(
    pm: pluggy.PluginManager, name: str, arg: str, value: Any, adopt: Any, **kwargs: Any
) -> Any:
    """Call every implementation in turn, each seeing ``arg`` as the previous ones left it.

    ``adopt(value, result)`` folds an implementation's non-``None`` result into
    the value handed to the next one. Exceptions propagate (a refusal).
    """
    for impl in _impls(pm, name):
        kwargs[arg] = value
        result = await await_maybe(_call_impl(impl, kwargs))
        if result is not None:
            value = adopt(value, result)
    return value


async def call_first(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call a decision hook: the first non-``None`` answer wins (awaited if awaitable).

    Exceptions propagate wrapped in :class:`HookError` (with the plugin's
    name): the caller turns them into that request's error.
    """
    for impl in _impls(pm, name):
        try:
            value = _call_impl(impl, kwargs)
            if value is None:
                continue
            return await await_maybe(value)
        except Exception as exc:
            raise HookError(impl.plugin_name, name, exc) from exc
    return None


def call_sync(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call a hook whose implementations are synchronous (registration hooks), isolated."""
    results = []
    for impl in _impls(pm, name):
        try:
            value = _call_impl(impl, kwargs)
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close:
                    close()
                raise TypeError(f"{name} must not be async")
        except Exception as exc:  # noqa: BLE001
            log.error("event=plugin_error plugin=%s hook=%s error=%s", impl.plugin_name, name, _one_line(exc))
            continue
        if value is not None:
            results.append(value)
    return results


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class HookCallerFacade:
    """What ``host.hooks`` gives plugins: call another hook by name."""

    def __init__(self, pm: pluggy.PluginManager):
        self._pm = pm

    async def first(self, name: str, **kwargs: Any) -> Any:
        return await call_first(self._pm, name, **kwargs)

    async def all(self, name: str, **kwargs: Any) -> list[Any]:
        return await call_all(self._pm, name, **kwargs)
