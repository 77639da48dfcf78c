"""``python -m harness.portability``."""

from __future__ import annotations

import sys

from harness.portability.cli import main

sys.exit(main())
