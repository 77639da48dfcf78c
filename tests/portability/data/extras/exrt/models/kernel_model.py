"""Imports packages that only some platforms' dependency sets install."""
import fast_kernels
import npu_ops
import shared_lib
