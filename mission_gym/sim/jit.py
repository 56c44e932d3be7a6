"""The one compile setting for every kernel function.

``error_model="numpy"`` drops the Python-style zero-division checks numba adds to each division (the kernel
guards its divisions itself); ``fastmath`` lets LLVM vectorize and fuse arithmetic. Both keep results
deterministic for a given build, which is what the reproducibility tests pin.
"""

from numba import njit

jit = njit(cache=True, fastmath=True, error_model="numpy")
jit_inline = njit(cache=True, fastmath=True, error_model="numpy", inline="always")
