"""The ``resilient-client`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``resilient-client demo`` runs the quickstart demo."""
    parser = argparse.ArgumentParser(prog="resilient-client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="start a flaky upstream on loopback and ride through it")
    chaos = commands.add_parser("chaos", help="serve the chaos upstream until interrupted")
    chaos.add_argument("--host", default="127.0.0.1")
    chaos.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    from .chaos import main as serve

    return serve(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
