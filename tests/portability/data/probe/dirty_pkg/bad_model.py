"""Imports the CUDA kernel package at module level: the probe must record this line."""

import os

from sgl_kernel import dsv3_router_gemm
