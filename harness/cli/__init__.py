"""`cotrain`: the one command-line entry point.

Each subcommand is a module in `harness/cli/commands/` with `add_arguments(parser)` and `run(args) -> int`;
its one-line help lives here, in COMMANDS, the one list of subcommands. Modules are imported only when
their subcommand runs, so `cotrain --help` does not pay for importing Drake and torch. Bad user input raises `UserError`: one line on stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from harness.core.errors import UserError, one_line, os_error_line

# name -> (module, one-line help), in pipeline order: data, learning, evaluation.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("harness.cli.commands.validate", "check a dataset store; print its summary"),
    "info": ("harness.cli.commands.info", "summary and per-episode statistics of a dataset store"),
    "rollout": ("harness.cli.commands.rollout", "run a scripted push in an env preset; show or record it"),
    "plan": ("harness.cli.commands.plan", "plan one start pose with the GCS contact planner; save and show it"),
    "gen-sim": ("harness.cli.commands.gen_sim", "generate simulated demonstrations from GCS plans (resumable)"),
    "gen-teleop": ("harness.cli.commands.gen_teleop", "generate clean demos with the scripted human-like teleoperator"),
    "teleop": ("harness.cli.commands.teleop", "push the T yourself from a browser (Meshcat); record episodes"),
    "import": ("harness.cli.commands.import_logs", "convert real robot logs (diffusion-policy zarr, LeRobot) to a dataset"),
    "export": ("harness.cli.commands.export", "write a dataset store as a LeRobot v3.0 dataset (parquet, video or images)"),
    "corrupt": ("harness.cli.commands.corrupt", "a corrupt copy of a store: gaussian, jitter, drift, latency or bias actions"),
    "annotate": ("harness.cli.commands.annotate", "train the sim-vs-clean noise classifier; write per-window sigma_n"),
    "train": ("harness.cli.commands.train", "train a diffusion policy (cotrain / ambient / truncated) from a config"),
    "eval": ("harness.cli.commands.eval", "closed-loop success rate of a checkpoint in Drake, with a Wilson interval"),
    "curve": ("harness.cli.commands.curve", "success rate versus Heun steps, or versus training steps (snapshots)"),
    "compare": ("harness.cli.commands.compare", "run a comparison study from an experiment YAML; table and plots"),
    "demo": ("harness.cli.commands.demo", "the main job on a small built-in default"),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on bad flags already; keep its message to one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cotrain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments need the module; import it only when that subcommand is asked for.
        if name in _requested_command():
            importlib.import_module(module).add_arguments(p)
    return parser


def _requested_command() -> set[str]:
    return {a for a in sys.argv[1:] if a in COMMANDS}


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args()
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        return _error(args.command, str(exc))
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except MemoryError:
        print(f"cotrain {args.command}: error: out of memory; make the sizes (batch, network, counts) "
              "smaller", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if "can't allocate memory" not in str(exc) and "out of memory" not in str(exc):
            raise
        print(f"cotrain {args.command}: error: out of memory ({str(exc).splitlines()[0][:160]}); make the "
              "sizes (batch, network, counts) smaller", file=sys.stderr)
        return 2
    except ImportError as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):   # Ctrl-C while a library (pydrake) was importing
            return _interrupted(args.command)
        raise
    except BrokenPipeError:
        # The reader of our output has gone (`cotrain validate X | head -3`): not an error; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # The path and OS-error boundary: a full disk, a name too long, a link to nowhere, a file where a
        # folder was expected. The machine or the path the user gave, not a bug: one line naming the path.
        return _error(args.command, os_error_line(exc))
    except ValueError as exc:
        if str(exc) != "embedded null byte":   # what the OS layer says of a path holding "\0"
            raise
        return _error(args.command, "a path holds a NUL byte (\\x00); remove it from the config or flag")


def _error(command: str, message: str) -> int:
    """Bad input, or an error of the OS at a path: one line on stderr (control characters escaped), exit 2."""
    print(f"cotrain {command}: error: {one_line(message)}", file=sys.stderr)
    return 2


def _interrupted(command: str) -> int:
    print(f"cotrain {command}: interrupted; finished work is kept, re-run to resume", file=sys.stderr)
    return 130
