"""A kit for plugin authors' tests.

* :class:`ScriptedProvider` / :class:`Script` — a provider you script answer by answer.
"""

from .provider import Script, ScriptedProvider

__all__ = ["Script", "ScriptedProvider"]
