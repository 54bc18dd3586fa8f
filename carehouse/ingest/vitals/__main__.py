"""A drain in its own process: ``python -m carehouse.ingest.vitals``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from carehouse.core.settings import Settings
from carehouse.ingest.vitals import drain as drain_module
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.settings import BATCH_MESSAGES


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m carehouse.ingest.vitals`: one drain; prints its summary."""
    parser = argparse.ArgumentParser(
        prog="python -m carehouse.ingest.vitals", description=drain_module.__doc__
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--continuous", action="store_true", help="do not stop when caught up (default: stop)"
    )
    parser.add_argument("--scale-out", action="store_true", help="join the drain's consumer group")
    parser.add_argument("--batch-messages", type=int, default=BATCH_MESSAGES)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary = drain_vitals(
        Settings(),
        until_caught_up=not args.continuous,
        duration=args.duration,
        scale_out=args.scale_out,
        batch_messages=args.batch_messages,
    )
    print(json.dumps(summary.to_json()) if args.json else summary.one_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
