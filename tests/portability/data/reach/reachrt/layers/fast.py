"""A predicate function imported from another module guards the import."""
from reachrt.utils import aiter_can_use_fast

_fast = aiter_can_use_fast()

if _fast:
    from aiter import fast_op
