"""simclip.heap: glibc's heap controls take effect on glibc and do nothing elsewhere."""

import ctypes
import gc
import os
import subprocess
import sys
import weakref

import pytest

from simclip import heap, limit_malloc_arenas, set_mmap_threshold, trim_heap

glibc_only = pytest.mark.skipif(heap._glibc() is None, reason="the C library is not glibc")


MAPPED_AGAIN = """
import ctypes, sys
from simclip import set_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "set":
    assert set_mmap_threshold(128 * 1024) is True
libc.free(libc.malloc(1 << 20))  # a big block freed: glibc raises its threshold past it, unless set
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


@glibc_only
@pytest.mark.parametrize(("how", "mapped"), [("default", "0"), ("set", "1")])
def test_a_set_mmap_threshold_keeps_big_blocks_mapped_apart_after_one_is_freed(how, mapped):
    """glibc raises its mmap threshold when a mapped block is freed, so the next 1 MiB block
    comes from the heap (and stays there); after set_mmap_threshold(128 KiB) it is a mapping of
    its own again (mallinfo2's hblks). A fresh process each, not to change this one's heap."""
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("mallinfo2 is glibc 2.33's")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's own settings
    out = subprocess.run([sys.executable, "-c", MAPPED_AGAIN, how], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == mapped


@glibc_only
def test_glibc_takes_an_arena_cap_and_trims_its_heap():
    assert limit_malloc_arenas(2) is True
    assert isinstance(trim_heap(), bool)


def test_trim_heap_collects_python_garbage_first():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the garbage collector frees
    gone = weakref.ref(a)
    del a, b
    gc.disable()
    try:
        trim_heap()
    finally:
        gc.enable()
    assert gone() is None


def test_every_control_does_nothing_where_the_c_library_is_not_glibc(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    calls = []
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: calls.append(a))
    assert (limit_malloc_arenas(2), set_mmap_threshold(1 << 17), trim_heap()) == (False, False, False)
    assert calls == []
