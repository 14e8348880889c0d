"""Validated config data → the core's settings (agents, gateway, hooks).

Only keys the file gave are passed on, so every other default is the
dataclass's own; what depends on the environment or on the registered
providers comes from ``defaults``. The plugins' tables are kept as given
(``Settings.sections``) for their owners.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from exoclaw_hooks import AgentConfig, ProviderSettings

from . import defaults as d
from .types import GatewayConfig, HooksConfig, Settings


def _pick(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


def gateway(data: Mapping[str, Any], env: Mapping[str, str]) -> GatewayConfig:
    kw = _pick(data, "bind", "port", "max_message_bytes", "ws_compression", "max_connections")
    for key in ("header_timeout_s", "body_timeout_s", "idle_timeout_s"):
        if key in data:
            kw[key] = float(data[key])
    if "allowed_origins" in data:
        kw["allowed_origins"] = tuple(data["allowed_origins"])
    return GatewayConfig(token=d.token(data.get("token"), env), **kw)


def hooks(data: Mapping[str, Any]) -> HooksConfig:
    return HooksConfig(disable=tuple(data.get("disable", ())), load=tuple(data.get("load", ())))


def agent(
    agent_id: str, data: Mapping[str, Any], env: Mapping[str, str], config_dir: str, providers: d.Providers
) -> AgentConfig:
    provider = data.get("provider") or d.default_provider(env, providers)
    key = d.api_key(provider, data.get("api_key"), env, providers)
    kw = _pick(data, "max_tokens", "base_url", "system_prompt", "max_tool_iterations", "max_tool_result_tokens")
    for seconds in ("timeout_s", "first_byte_timeout_s", "call_timeout_s", "turn_timeout_s"):
        if seconds in data:
            kw[seconds] = float(data[seconds])
    if "soul_path" in data:
        kw["soul_path"] = d.resolve_path(data["soul_path"], config_dir, env)
    if "tools" in data:
        kw["tools"] = tuple(data["tools"])
    if "options" in data:
        kw["options"] = dict(data["options"])
    info = providers.get(provider)
    model = data.get("model") or (info.default_model if info else None) or provider
    agent_cfg = AgentConfig(id=agent_id, provider=provider, model=model, api_key=key, **kw)
    if "fallback" in data:
        fb = data["fallback"]
        fb_key = fb.get("api_key") or (key if fb["provider"] == provider else None)
        agent_cfg = replace(agent_cfg, fallback=ProviderSettings(
            provider=fb["provider"],
            model=fb["model"],
            max_tokens=fb.get("max_tokens", agent_cfg.max_tokens),
            base_url=fb.get("base_url"),
            api_key=d.api_key(fb["provider"], fb_key, env, providers),
            timeout_s=agent_cfg.timeout_s,
        ))
    return agent_cfg


def settings(
    data: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    providers: d.Providers,
    sections: Mapping[str, Any],
    config_dir: str,
    data_dir: str,
    config_path: str | None,
) -> Settings:
    default = data.get("agent", {})
    default_id = default.get("id", d.DEFAULT_AGENT_ID)
    agents = {default_id: agent(default_id, default, env, config_dir, providers)}
    for name, table in data.get("agents", {}).items():
        agents[name] = agent(name, table, env, config_dir, providers)
    return Settings(
        gateway=gateway(data.get("gateway", {}), env),
        agents=agents,
        default_agent=default_id,
        hooks=hooks(data.get("hooks", {})),
        sections=dict(sections),
        config_dir=config_dir,
        data_dir=data_dir,
        config_path=config_path,
        store_url=d.store_url(data.get("store", {}).get("url"), env),
        **({"store_lease_s": float(data["store"]["lease_s"])} if "lease_s" in data.get("store", {}) else {}),
        env=env,
    )
