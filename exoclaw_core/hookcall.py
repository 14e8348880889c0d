"""The one bridge between pluggy (synchronous) and the asyncio core.

Hooks are called the pluggy way — ``pm.hook.NAME(**kwargs)`` — so pluggy's
own rules hold: ``tryfirst``/``trylast``, ``firstresult``, historic hooks,
and wrappers (``wrapper=True`` and old-style ``hookwrapper=True``) around
the whole call. Two things are added, both at registration time by
:func:`guard` (the plugin manager wraps each implementation once):

* **Isolation with a name.** An observer or contribution that raises is
  logged with its plugin's name and counts as ``None``; the others still run.
  A decision's exception (or its awaitable's) becomes a :class:`HookError`
  naming the plugin, which the caller turns into that request's error.
* **Async.** An implementation may be ``async def`` (or a decision may return
  an awaitable): pluggy hands the awaitables back as results and
  :func:`call_all` / :func:`call_first` await them here (the guard already
  wrapped each awaitable, so an exception raised while awaiting is isolated
  or attributed exactly like a synchronous one).

One hook is not a plain pluggy call: ``before_llm_call`` is a *pipeline*
(each implementation sees the request as the previous one left it, awaited
in turn — pluggy's call loop runs every implementation before any coroutine
can), so :func:`call_pipeline` walks ``get_hookimpls()`` in pluggy's order,
and a wrapper of that hook is refused at load.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any, Callable

import pluggy

from exoclaw_hooks import _specs

log = logging.getLogger("exoclaw.hooks")

#: hooks whose implementations are awaited in turn, each seeing the previous one's result
PIPELINE_HOOKS = _specs.PIPELINE_HOOKS
DECISION_HOOKS = _specs.DECISION_HOOKS
REGISTRATION_HOOKS = _specs.REGISTRATION_HOOKS


class HookError(Exception):
    """A decision implementation raised; ``plugin`` names it, ``error`` is what it raised."""

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin, self.hook, self.error = plugin, hook, error
        super().__init__(f"plugin {plugin} failed in {hook}: {error}")


def one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _log_failure(plugin: str, hook: str, exc: BaseException) -> None:
    log.error(
        "event=plugin_error plugin=%s hook=%s error=%s", plugin, hook, one_line(exc),
        exc_info=log.isEnabledFor(logging.DEBUG),
    )


# ---------------------------------------------------------------- the guard, applied at registration


def guard(hook: str, plugin: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` wrapped for its hook's kind (see the module docstring)."""
    if hook in PIPELINE_HOOKS:
        return function  # refusals must propagate: the pipeline is walked by call_pipeline
    if hook in DECISION_HOOKS:
        @functools.wraps(function)
        def decision(*args: Any) -> Any:
            try:
                value = function(*args)
            except Exception as exc:
                raise HookError(plugin, hook, exc) from exc
            return _attributed(value, plugin, hook) if inspect.isawaitable(value) else value

        return decision
    if hook in REGISTRATION_HOOKS:
        @functools.wraps(function)
        def registration(*args: Any) -> Any:
            try:
                value = function(*args)
                if inspect.isawaitable(value):
                    getattr(value, "close", lambda: None)()
                    raise TypeError(f"{hook} must not be async")
                return value
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                _log_failure(plugin, hook, exc)
                return None

        return registration

    @functools.wraps(function)
    def observer(*args: Any) -> Any:
        try:
            value = function(*args)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            _log_failure(plugin, hook, exc)
            return None
        return _isolated(value, plugin, hook) if inspect.isawaitable(value) else value

    return observer


async def _attributed(awaitable: Any, plugin: str, hook: str) -> Any:
    try:
        return await awaitable
    except (asyncio.CancelledError, HookError):
        raise
    except Exception as exc:
        raise HookError(plugin, hook, exc) from exc


class _Awaited:
    """Marks an isolated awaitable so that :func:`call_all` knows to await it."""

    __slots__ = ("coro", "inner")

    def __init__(self, coro: Any, inner: Any):
        self.coro, self.inner = coro, inner


def _isolated(awaitable: Any, plugin: str, hook: str) -> _Awaited:
    async def run() -> Any:
        try:
            return await awaitable
        except Exception as exc:  # noqa: BLE001
            _log_failure(plugin, hook, exc)
            return None

    return _Awaited(run(), awaitable)


# ---------------------------------------------------------------- calling


async def await_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (datasette's ``await_me_maybe``)."""
    if isinstance(value, _Awaited):
        return await value.coro
    if inspect.isawaitable(value):
        return await value
    return value


async def call_all(pm: pluggy.PluginManager, name: str, *, concurrent: bool = False, **kwargs: Any) -> list[Any]:
    """Call a contribution/observer hook through pluggy; return the non-``None`` results, in pluggy's order.

    ``concurrent`` awaits the asynchronous implementations together
    (``assemble_context``: the memory layers do I/O independently).
    """
    results = getattr(pm.hook, name)(**kwargs)
    if concurrent and sum(isinstance(r, _Awaited) or inspect.isawaitable(r) for r in results) > 1:
        values = await asyncio.gather(*(await_maybe(r) for r in results))
    else:
        values = []
        try:
            for r in results:
                values.append(await await_maybe(r))
        finally:
            for r in results[len(values) + 1:]:  # cancelled midway: the rest never run
                _close(r)
    return [v for v in values if v is not None]


def _close(value: Any) -> None:
    """An awaitable that will never be awaited: close it (and what it wraps) without a warning."""
    for coro in (value.coro, value.inner) if isinstance(value, _Awaited) else (value,):
        close = getattr(coro, "close", None)
        if close is not None:
            close()


async def call_first(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call a decision hook through pluggy: the first non-``None`` answer, awaited if it is awaitable.

    Raises :class:`HookError` (naming the plugin) when the deciding
    implementation raised.
    """
    return await await_maybe(getattr(pm.hook, name)(**kwargs))


def call_sync(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call a hook whose implementations are synchronous (registration, reports) through pluggy."""
    results = getattr(pm.hook, name)(**kwargs)
    out = []
    for value in results:
        if isinstance(value, _Awaited):
            _close(value)
            log.error("event=plugin_error hook=%s error=%s", name, "must not be async here")
            continue
        out.append(value)
    return out


async def call_pipeline(
    pm: pluggy.PluginManager, name: str, arg: str, value: Any, adopt: Callable[[Any, Any], Any], **kwargs: Any
) -> Any:
    """Call each implementation in pluggy's order, each seeing ``arg`` as the previous ones left it.

    ``adopt(value, result)`` folds an implementation's non-``None`` result into
    the value handed to the next one. Exceptions propagate (a refusal).
    """
    for impl in reversed(getattr(pm.hook, name).get_hookimpls()):
        kwargs[arg] = value
        result = await await_maybe(impl.function(*[kwargs[a] for a in impl.argnames]))
        if result is not None:
            value = adopt(value, result)
    return value


class HookCallerFacade:
    """What ``host.hooks`` gives plugins: call another hook by name."""

    def __init__(self, pm: pluggy.PluginManager):
        self._pm = pm

    async def first(self, name: str, **kwargs: Any) -> Any:
        return await call_first(self._pm, name, **kwargs)

    async def all(self, name: str, **kwargs: Any) -> list[Any]:
        return await call_all(self._pm, name, **kwargs)
