"""Subcommands of `cotrain`: one module each, wired up in harness/cli.py (top layer)."""
