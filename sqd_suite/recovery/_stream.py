"""Feed numba kernels the uniforms a ``numpy.random.Generator`` would give them.

The kernels take plain arrays of uniforms rather than the generator, so they work
with any bit generator and do not rely on numba's ``Generator`` support. Uniforms
are drawn ahead with ``rng.random`` (the same stream as one ``rng.random()`` per
draw, which is what ``Generator.choice`` uses), the kernel reports how many it
used, and the generator is then left exactly as if only those had been drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_ADVANCE_BLOCK = 1 << 20
# uniforms held at once: bounds memory whatever the number of rows
_MAX_CHUNK = 1 << 20


def _advance(rng: np.random.Generator, n: int) -> None:
    """Advance ``rng`` by ``n`` calls of ``rng.random()``."""
    bg = rng.bit_generator
    if isinstance(bg, (np.random.PCG64, np.random.PCG64DXSM)) and not bg.state["has_uint32"]:
        # one 64-bit step per double; advance() is O(log n)
        bg.advance(n)
        return
    while n > 0:
        k = min(n, _ADVANCE_BLOCK)
        rng.random(k)
        n -= k


def run_with_uniforms(
    rng: np.random.Generator,
    step: Callable[[np.ndarray, int], tuple[int, int]],
    n_items: int,
    first_chunk: int,
) -> int:
    """Run ``step(u, start) -> (next_start, used)`` over items until all are done.

    ``step`` processes items from ``start`` with uniforms ``u``; when ``u`` runs
    out it returns the item to redo and the uniforms used before it. Returns the
    number of uniforms consumed; ``rng`` ends in the state that many draws give.
    """
    saved = rng.bit_generator.state
    chunk = min(max(int(first_chunk), 64), _MAX_CHUNK)
    u = rng.random(chunk)
    drawn = chunk
    used_total = 0
    start = 0
    while True:
        start, used = step(u, start)
        used_total += used
        if start >= n_items:
            break
        if used == 0:
            # one item needs more than the buffer holds
            chunk *= 2
        u = np.concatenate((u[used:], rng.random(chunk)))
        drawn += chunk
    if drawn != used_total:
        rng.bit_generator.state = saved
        _advance(rng, used_total)
    return used_total
