"""Root conftest: the harness plugin itself loads through its pytest11 entry point (pip install -e .)."""
pytest_plugins = ("pytester",)
