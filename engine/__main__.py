"""`python -m engine --run-dir DIR`: the worker entry point (see engine.worker)."""
import sys

from .worker import main

sys.exit(main())
