"""Imported only under ``if _is_hip:``, so its top-level aiter import is fine."""

import aiter
