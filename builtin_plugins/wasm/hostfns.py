"""The ``store:NAME`` host functions: ``kv_get``, ``kv_set``, ``kv_delete`` (SPEC §6).

Module ``extism:host/user``; every argument and result is an ``i64`` Extism
memory offset of a UTF-8 string; ``kv_get`` returns 0 when the key is absent
(an empty string also travels as offset 0). Keys are at most 256 bytes,
values at most 64 KiB: a longer key or value is refused (``kv_get`` reads
0, ``kv_set`` stores nothing) and logged, without reading it.

Why one set of functions for the whole process: ``extism.host_fn`` appends
to a module-wide registry that the C callback indexes, so creating functions
per plugin or per call would grow it forever. The three functions are made
once; each call hands its :class:`~.callctx.CallContext` (store, namespace)
as Extism's ``host_context``.

An exception inside a host function never reaches the guest (cffi prints it
and the guest reads 0), so every function catches everything and returns an
explicit value.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import extism

from .callctx import CallContext

log = logging.getLogger("exoclaw.wasm")

NAMESPACE = "extism:host/user"
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 64 * 1024


def _read(current: Any, param: Any, limit: int) -> str | None:
    """The UTF-8 string at an offset, ``""`` for offset 0, ``None`` if longer than ``limit``.

    The length is checked before anything is copied. Invalid UTF-8 raises.
    """
    offset = param.value
    if not offset:
        return ""
    mem = current.memory_at_offset(offset)
    if mem.length > limit:
        return None
    if mem.length == 0:
        return ""
    return bytes(current.memory(mem)[:]).decode("utf-8")


def give(current: Any, result: Any, data: bytes) -> bool:
    """Copy ``data`` into a new Extism block and return its offset in ``result``; ``False`` if it cannot be allocated."""
    result.value = 0
    if not data:
        return True
    mem = current.alloc(len(data))
    if not mem.offset:
        return False
    current.memory(mem)[:] = data
    result.value = mem.offset
    return True


def _key(current: Any, ctx: CallContext, param: Any, fn: str) -> str | None:
    """The key a guest passed, or ``None`` (reported) when it is longer than allowed."""
    key = _read(current, param, MAX_KEY_BYTES)
    if key is None:
        ctx.problem(fn, f"key longer than {MAX_KEY_BYTES} bytes")
    return key


def _context(current: Any) -> CallContext | None:
    """The call's context if it may use its namespace (``None``: not granted, or the call was stopped)."""
    ctx = current.host_context()
    if not isinstance(ctx, CallContext) or not ctx.in_guest():
        return None
    return ctx if ctx.namespace and ctx.store is not None else None


def _kv_get(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    results[0].value = 0
    ctx = None
    try:
        ctx = _context(current)
        if ctx is None:
            return
        key = _key(current, ctx, params[0], "kv_get")
        if key is None:
            return
        if not key:
            return
        value = ctx.store.kv_get(ctx.namespace, key)
        if not value:
            return
        data = value.encode("utf-8")
        if len(data) > MAX_VALUE_BYTES:
            ctx.problem("kv_get", f"stored value larger than {MAX_VALUE_BYTES} bytes")
            return
        if not give(current, results[0], data):
            ctx.problem("kv_get", "no memory left for the value")
    except Exception as exc:  # noqa: BLE001 - nothing may escape into the guest
        results[0].value = 0
        _failed(ctx, "kv_get", exc)


def _kv_set(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    ctx = None
    try:
        ctx = _context(current)
        if ctx is None:
            return
        key = _key(current, ctx, params[0], "kv_set")
        if key is None:
            return
        if not key:
            ctx.problem("kv_set", "empty key")
            return
        value = _read(current, params[1], MAX_VALUE_BYTES)
        if value is None:
            ctx.problem("kv_set", f"value larger than {MAX_VALUE_BYTES} bytes")
            return
        if value == "":
            # An empty value reads back as absent (offset 0): storing one means deleting.
            ctx.store.kv_delete(ctx.namespace, key)
        else:
            ctx.store.kv_set(ctx.namespace, key, value)
    except Exception as exc:  # noqa: BLE001
        _failed(ctx, "kv_set", exc)


def _kv_delete(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    ctx = None
    try:
        ctx = _context(current)
        if ctx is None:
            return
        key = _key(current, ctx, params[0], "kv_delete")
        if key is None:
            return
        if key:
            ctx.store.kv_delete(ctx.namespace, key)
    except Exception as exc:  # noqa: BLE001
        _failed(ctx, "kv_delete", exc)


def _failed(ctx: CallContext | None, fn: str, exc: BaseException) -> None:
    try:
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        if ctx is not None:
            ctx.problem(fn, what)
        else:
            log.warning("event=wasm_kv_failed fn=%s reason=%s", fn, what)
    except Exception:  # noqa: BLE001 - logging must not raise into the guest either
        pass


_lock = threading.Lock()
_functions: list[Any] | None = None


def kv_functions() -> list[Any]:
    """The three host functions (made once per process)."""
    global _functions
    with _lock:
        if _functions is None:
            i64 = extism.ValType.I64
            _functions = [
                extism.host_fn(name="kv_get", namespace=NAMESPACE, signature=([i64], [i64]))(_kv_get),
                extism.host_fn(name="kv_set", namespace=NAMESPACE, signature=([i64, i64], []))(_kv_set),
                extism.host_fn(name="kv_delete", namespace=NAMESPACE, signature=([i64], []))(_kv_delete),
            ]
        return list(_functions)
