"""A kit for plugin authors' tests.

* :class:`ScriptedProvider` / :class:`Script` — a provider you script answer by answer.
* :func:`providers_of` / :func:`tables_of` — what a plugin registers, without a gateway.
* :class:`FakeHost` — the ``host`` a plugin gets, without a gateway.
"""

from .host import FakeHost
from .provider import Script, ScriptedProvider
from .registration import providers_of, tables_of

__all__ = ["FakeHost", "Script", "ScriptedProvider", "providers_of", "tables_of"]
