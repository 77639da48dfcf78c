"""An out-of-tree runtime adapter (``hf_ext``) and check (``repeatable_greedy``) for the harness."""
