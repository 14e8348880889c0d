"""The builtin ``mcp`` plugin: tools of MCP servers for the agents granted them (see :mod:`.plugin`)."""
