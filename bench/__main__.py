"""`python -m bench`: see bench/README.md."""

from __future__ import annotations

import sys

from bench.cli import parse
from bench.run import main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    raise SystemExit(main(parse(arguments), arguments))
