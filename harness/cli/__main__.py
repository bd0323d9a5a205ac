"""`python -m harness.cli ...` is `cotrain ...`."""
import sys

from harness.cli import main

sys.exit(main())
