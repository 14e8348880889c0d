"""The builtin ``wasm`` plugin: WASM tools and channel adapters in the Extism sandbox (SPEC §6, §7).

* ``plugin.py`` — :class:`WasmPlugin`, the hook implementations.
* ``bridge.py`` — load (read, pin, compile once, trial, describe) and call (fresh instance per call).
* ``capabilities.py`` — ``http:HOST`` / ``store:NAME`` grants.
* ``hostfns.py`` — the ``kv_*`` host functions behind ``store:NAME``.
* ``channels.py`` — webhook verification, ``parse_incoming`` / ``format_outgoing`` conversions.
* ``extlog.py`` — the cause of a trap, read from Extism's log.
"""
