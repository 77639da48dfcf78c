import tilelang  # runs when LazyModel is built
