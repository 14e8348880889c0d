"""The memory layers (SPEC §9): soul, semantic facts, episodic window — three plugins."""
