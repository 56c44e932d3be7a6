"""The compile settings of the kernel functions.

``error_model="numpy"`` drops the Python-style zero-division checks numba adds to each division (the kernel
guards its divisions itself); ``fastmath`` lets LLVM vectorize and fuse arithmetic. Both keep results
deterministic for a given build, which is what the reproducibility tests pin.

The kernel only reads and writes arrays its caller owns, so it runs without numba's reference counting
(``_nrt=False``): with it, every array argument and every row view (``units[b, u]``) pays an atomic
increment and decrement, over a third of a step's time. Such a function cannot allocate (numba refuses to
compile ``np.zeros`` there); the few setup functions that build arrays use ``jit_alloc``, and so does
``mission_gym.ppo_kernel``, which keeps lists of scratch arrays. ``_nrt`` is a private numba option, which is
one reason numba is pinned in constraints.txt.

``jit_inline`` inlines a function into its callers at numba's level: a call of a function that takes arrays
passes every field of every array (pointer, shape, strides), which costs more than the body of most of
the per-unit helpers of a tick.
"""

from numba import njit

jit = njit(cache=True, fastmath=True, error_model="numpy", _nrt=False)
jit_inline = njit(cache=True, fastmath=True, error_model="numpy", _nrt=False, inline="always")
jit_alloc = njit(cache=True, fastmath=True, error_model="numpy")
