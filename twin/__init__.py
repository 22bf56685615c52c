"""LLM Twin core: settings, domain types, stores, model resolution and the `twin` CLI."""
