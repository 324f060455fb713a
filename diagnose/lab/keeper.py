"""``python -m diagnose.lab.keeper``: the process that keeps a detached lab's servers (see
:func:`diagnose.lab.lab.keep`)."""

from __future__ import annotations

import sys

from diagnose.lab import lab

if __name__ == "__main__":
    sys.exit(lab.keep(sys.argv[1:]))
