"""A synthetic serving runtime laid out like SGLang, for the portability tests."""
