"""CPU kernels: Numba-compiled loops and BLAS through NumPy. Arrays in, arrays out, no autograd.

Threads. Numba's parallel loops run on an OpenMP pool (libgomp) and matrix products on
OpenBLAS's own threads, one after the other in every layer. With libgomp's default wait
policy the OpenMP workers keep spinning after each parallel loop and take the cores that
the next BLAS call needs: measured on the 2-core development machine, a MobileNet v2
training step took 1.0 s with the default policy and 0.33 s with ``OMP_WAIT_POLICY=PASSIVE``
(LeNet-5: 68 -> 26 ms; ResNet-18 at 32x32: 2.5 -> 1.25 s). So minidl asks for the passive
policy, once, here, before Numba's OpenMP runtime starts, unless the user has chosen a
policy. It is an environment variable because libgomp reads it only when it loads; a
library that loads libgomp earlier in the process (PyTorch does, at import) keeps its own.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
