"""The ``riskmodel`` program's own process: whether the command runs in it, and the garbage
collector's freeze that only such a process may use."""

from __future__ import annotations

import gc

# True in the ``riskmodel`` program (:func:`console`), whose process ends with the command.
IN_PROGRAM = False


def freeze_heap() -> None:
    """In the program only, move every object alive now into the garbage collector's permanent
    generation, which its passes skip. The modules a command imports (pandas', numba's: about
    10^5 objects) live until the process exits, and the full passes over them cost about 0.1 s
    in a venue-size eod run and as much again while the interpreter tears down. Not in a
    caller's own process (tests, notebooks): frozen objects in a reference cycle are never
    freed."""
    if IN_PROGRAM:
        gc.freeze()
