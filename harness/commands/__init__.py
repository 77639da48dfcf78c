"""`harness run` and `harness golden`: the command line over the plugin."""
