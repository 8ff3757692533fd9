"""Matrix products on the GPU: cuBLAS through CuPy (the CPU's thread juggling is not needed here)."""


def matmul(a, b, out=None):
    """a (M, K) @ b (K, N), written into ``out`` when given."""
    import cupy

    return cupy.matmul(a, b, out=out)
