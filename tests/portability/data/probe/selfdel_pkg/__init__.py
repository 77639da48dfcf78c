"""A package that removes itself from sys.modules: importing a submodule fails in importlib (KeyError)."""
import sys

del sys.modules[__name__]
