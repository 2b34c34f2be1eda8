"""``cupyx`` of the CuPy stand-in (see ``tests/fakegpu/cupy``): ``scipy.ndimage``."""
