"""Subcommands of `cotrain`: one module each, wired up in harness/cli/__init__.py (top layer)."""
