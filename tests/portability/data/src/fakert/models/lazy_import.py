def top_k(x):
    from flashinfer import top_k_sampling

    return top_k_sampling(x)
