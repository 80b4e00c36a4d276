"""`python -m sdnctl.cli ...`: what the lab, the demo and the tests spawn."""

import sys

from sdnctl.cli import main

sys.exit(main())
