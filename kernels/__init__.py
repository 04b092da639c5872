"""Data files of gpuad: the elementwise derivative table and CUDA helpers (installed as gpuad.kernels)."""
