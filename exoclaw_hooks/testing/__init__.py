"""A kit for plugin authors' tests.

* :class:`ScriptedProvider` / :class:`Script` — a provider you script answer by answer.
* :func:`providers_of` / :func:`tables_of` — what a plugin registers, without a gateway.
* :class:`FakeHost` — the ``host`` a plugin gets, without a gateway.
* :func:`run_gateway` (``exoclaw_hooks.testing.gateway``) — a real gateway on a random
  port, configured by TOML text, with your plugin registered; :func:`memory_store` — a
  real store that keeps nothing.
* :class:`~exoclaw_hooks.testing.store_conformance.StoreConformance` — the suite any
  ``Store`` implementation runs (inherit it, give it an ``open_store`` fixture).
* pytest fixtures (``exoclaw_gateway``, ``fake_host``, ``scripted_provider``), there
  by themselves once Exoclaw is installed (``pytest11`` entry point).

Importing this package loads neither aiohttp nor the gateway; the functions
that need them import them when called.
"""

from typing import Any

from .host import FakeHost
from .provider import Script, ScriptedProvider
from .registration import providers_of, tables_of

__all__ = ["FakeHost", "Script", "ScriptedProvider", "memory_store", "providers_of", "run_gateway", "tables_of"]


def memory_store() -> Any:
    """A real store (the SQLite one, in memory): every method of ``exoclaw_hooks.Store``; close it after."""
    from exoclaw_core.store.sqlite import SQLiteStore

    return SQLiteStore(None)


def __getattr__(name: str) -> Any:
    if name == "run_gateway":  # a real gateway: loaded on demand
        from .gateway import run_gateway

        return run_gateway
    raise AttributeError(name)
