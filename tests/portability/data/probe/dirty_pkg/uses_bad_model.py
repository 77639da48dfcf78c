from dirty_pkg.bad_model import dsv3_router_gemm  # fails transitively, at bad_model.py's line
