"""The C heap's controls on glibc (`mallopt`, `malloc_trim`), through ctypes.

The server's decode workers cap their malloc arenas, the Ray driver trims its heap after each
round, and bench/score_bench.py can fix the mmap threshold to measure what that costs
(docs/bench.md has what each one measured). Each call does nothing and returns False where the
C library is not glibc (musl, macOS, Windows): these are memory economies, never needed for a
correct result.

Sources: glibc's malloc.h (the parameter numbers), mallopt(3), malloc_trim(3).
"""

import ctypes
import gc
import sys

M_MMAP_THRESHOLD = -3  # mallopt parameter: allocations this big or bigger get mappings of their own
M_ARENA_MAX = -8  # mallopt parameter: the most malloc arenas


def _glibc():
    """The process's C library when it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _mallopt(param, value):
    libc = _glibc()
    return bool(libc and libc.mallopt(param, int(value)))


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas at `arenas` (each reserves 64 MB of address space; glibc makes
    up to 8 per core for the threads that allocate).

    Returns:
        True when glibc took the value; False where it refused or the C library is not glibc.
    """
    return _mallopt(M_ARENA_MAX, arenas)


def set_mmap_threshold(size_bytes: int) -> bool:
    """Have glibc serve allocations of `size_bytes` or more from mappings of their own, given
    back to the system when freed (and stop glibc raising the threshold as big blocks are freed).

    Returns:
        True when glibc took the value; False where it refused or the C library is not glibc.
    """
    return _mallopt(M_MMAP_THRESHOLD, size_bytes)


def trim_heap() -> bool:
    """Collect Python's garbage, then give the C heap's free pages back to the system (glibc's
    `malloc_trim(0)`).

    Returns:
        True when glibc released memory; False when it had none to release or the C library is
        not glibc.
    """
    gc.collect()
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))
