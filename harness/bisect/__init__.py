"""`harness bisect`: find the first bad runtime release or commit for a red cell or a portability finding.

refs.py (candidates), envs.py / origins.py (a cached environment or source per candidate),
probes.py (judge one candidate), search.py (the binary search, pure), state.py (resume),
runner.py (the loop), report.py (what is printed and written), cli.py (the command).
"""
