"""A model that imports its rope module only when it is built."""


class LazyModel:
    def __init__(self):
        from reachrt.layers import lazy_rope

        self.rope = lazy_rope
