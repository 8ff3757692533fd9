"""minidl: a deep-learning engine from scratch on NumPy, with hand-written Numba kernels."""
