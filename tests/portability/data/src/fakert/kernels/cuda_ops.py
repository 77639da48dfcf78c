def fused_add(x):
    return x + 1
