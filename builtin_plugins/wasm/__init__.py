"""The builtin ``wasm`` plugin: WASM tools and channel adapters in the Extism sandbox (SPEC §6, §7).

* ``plugin.py`` — :class:`WasmPlugin`, the hook implementations.
* ``bridge.py`` — load: read, pin, compile once, trial, describe.
* ``calls.py`` — call: a fresh instance per call, failures named for what they are, the caller's identity.
* ``callctx.py`` — one call's state (grants, deadline, what its host functions found) and how to stop it.
* ``limits.py`` — how many calls run at once, per plugin and per session.
* ``engines.py`` — one compiled engine per running call (a timeout or cancel never ends another call).
* ``capabilities.py`` — ``http:HOST`` / ``store:NAME`` grants (reserved namespaces refused).
* ``hostfns.py`` — the ``kv_*`` host functions behind ``store:NAME``.
* ``hosthttp.py`` — the plugins' HTTP, every redirect hop checked against the grant.
* ``channels.py`` — webhook verification, ``parse_incoming`` / ``format_outgoing`` conversions.
* ``extlog.py`` — the cause of a trap, read from Extism's log.
"""
