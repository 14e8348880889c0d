"""Validated config data → the frozen dataclasses of ``exoclaw_hooks``.

Only keys the file gave are passed on, so every other default is the
dataclass's own; what depends on the environment comes from ``defaults``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from exoclaw_hooks import (
    AgentConfig,
    Binding,
    BudgetLimits,
    BudgetsConfig,
    GatewayConfig,
    HooksConfig,
    MemoryConfig,
    Price,
    ProviderSettings,
    Settings,
    WasmPluginConfig,
)

from . import defaults as d


def _pick(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


def gateway(data: Mapping[str, Any], env: Mapping[str, str]) -> GatewayConfig:
    kw = _pick(data, "bind", "port", "max_message_bytes")
    if "allowed_origins" in data:
        kw["allowed_origins"] = tuple(data["allowed_origins"])
    return GatewayConfig(token=d.token(data.get("token"), env), **kw)


def agent(agent_id: str, data: Mapping[str, Any], env: Mapping[str, str], config_dir: str) -> AgentConfig:
    provider = data.get("provider") or d.default_provider(env)
    key = d.api_key(provider, data.get("api_key"), env)
    kw = _pick(data, "max_tokens", "base_url", "system_prompt", "max_tool_iterations", "max_tool_result_tokens")
    if "timeout_s" in data:
        kw["timeout_s"] = float(data["timeout_s"])
    if "soul_path" in data:
        kw["soul_path"] = d.resolve_path(data["soul_path"], config_dir, env)
    if "tools" in data:
        kw["tools"] = tuple(data["tools"])
    if "options" in data:
        kw["options"] = dict(data["options"])
    agent_cfg = AgentConfig(
        id=agent_id, provider=provider, model=data.get("model") or d.DEFAULT_MODELS[provider], api_key=key, **kw
    )
    if "fallback" in data:
        fb = data["fallback"]
        fb_key = fb.get("api_key") or (key if fb["provider"] == provider else None)
        agent_cfg = replace(agent_cfg, fallback=ProviderSettings(
            provider=fb["provider"],
            model=fb["model"],
            max_tokens=fb.get("max_tokens", agent_cfg.max_tokens),
            base_url=fb.get("base_url"),
            api_key=d.api_key(fb["provider"], fb_key, env),
            timeout_s=agent_cfg.timeout_s,
        ))
    return agent_cfg


def budgets(data: Mapping[str, Any]) -> BudgetsConfig:
    per_agent = {name: BudgetLimits(**limits) for name, limits in data.get("agents", {}).items()}
    return BudgetsConfig(agents=per_agent, **_pick(data, "session", "daily", "monthly"))


def plugin(data: Mapping[str, Any], env: Mapping[str, str], config_dir: str) -> WasmPluginConfig:
    kw = _pick(data, "timeout_ms", "memory_max_pages", "max_output_bytes", "max_concurrency",
               "max_concurrency_per_session")
    if "sha256" in data:
        kw["sha256"] = data["sha256"].lower()
    return WasmPluginConfig(
        name=data["name"],
        path=d.resolve_path(data["path"], config_dir, env),
        capabilities=tuple(data.get("capabilities", ())),
        secrets=dict(data.get("secrets", {})),
        config=dict(data.get("config", {})),
        **kw,
    )


def settings(
    data: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    config_dir: str,
    data_dir: str,
    config_path: str | None,
) -> Settings:
    default = data.get("agent", {})
    default_id = default.get("id", d.DEFAULT_AGENT_ID)
    agents = {default_id: agent(default_id, default, env, config_dir)}
    for name, table in data.get("agents", {}).items():
        agents[name] = agent(name, table, env, config_dir)
    hooks = data.get("hooks", {})
    return Settings(
        gateway=gateway(data.get("gateway", {}), env),
        agents=agents,
        default_agent=default_id,
        budgets=budgets(data.get("budgets", {})),
        pricing={key: Price(**price) for key, price in data.get("pricing", {}).items()},
        memory=MemoryConfig(**data.get("memory", {})),
        hooks=HooksConfig(disable=tuple(hooks.get("disable", ())), load=tuple(hooks.get("load", ()))),
        plugins=tuple(plugin(p, env, config_dir) for p in data.get("plugins", ())),
        bindings=tuple(Binding(**b) for b in data.get("bindings", ())),
        config_dir=config_dir,
        data_dir=data_dir,
        config_path=config_path,
    )
