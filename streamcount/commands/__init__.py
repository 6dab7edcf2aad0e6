"""CLI subcommands of the runtime (no torch)."""
