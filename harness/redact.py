"""Secret redaction applied to everything a report renders (HTML, Markdown, JUnit), logs included.

Three kinds of secret are masked as ``***``:

- a value assigned to a secret-looking name, in any of the shapes logs and configs use::

      HF_TOKEN=hf_abc   export OPENAI_API_KEY="sk-1"   "db_password": "x"   --api-key sk-1

  Secret-looking names (case-insensitive): ``HF_TOKEN``, ``*_KEY``, ``*_TOKEN``, ``*_SECRET``,
  ``*PASSWORD*``, and the ``Authorization: Bearer`` header; names of hashes, digests and lookup
  keys are not secrets and stay readable (``reference_key``, ``matrix_key``, ``cache_key``,
  ``weights_sha256_key``, ``pad_token``: see ``_NOT_SECRET``);
- the password of a URL: ``https://user:pw@host`` becomes ``https://user:***@host``;
- the literal value of every secret-named environment variable of the rendering process, and of
  every secret-named key found in the run's manifest or fingerprints, wherever it appears.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, final

MASK = "***"
MIN_KNOWN_LEN = 6  # shorter literal values would mask ordinary words

_NAME = r"(?:HF_TOKEN|[A-Za-z0-9_]*(?:_KEY|_TOKEN|_SECRET)|[A-Za-z0-9_]*PASSWORD[A-Za-z0-9_]*)"
_SECRET_NAME = re.compile(rf"^{_NAME}$|^(?:api[-_]?key|token|secret|password|passwd)$", re.IGNORECASE)
# ``<stem>_key`` / ``<stem>_token`` names that hold a hash, a lookup key or a vocabulary entry, never a secret
_NOT_SECRET = re.compile(
    r"^(?:[A-Za-z0-9_]*_)?(?:reference|ref|matrix|cache|sort|group|lookup|index|primary|foreign|partition|"
    r"cell|run|record|row|dedup|hash|digest|sha\d*|md5|checksum|fingerprint)_key$"
    r"|^(?:[A-Za-z0-9_]*_)?(?:bos|eos|pad|unk|sep|cls|mask|start|end|stop|chosen|next|first|last)_token$",
    re.IGNORECASE)
_ASSIGN = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_NAME})(?![A-Za-z0-9_])([\"']?\s*[:=]\s*[\"']?)([^\s\"',;&]+)")
_FLAG = re.compile(r"(?i)(--[a-z0-9-]*(?:key|token|secret|password|passwd)[a-z0-9-]*)(=|\s+)(?!--)(\S+)")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s:/@]+):([^\s@/]+)@")
_BEARER = re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)([^\s\"']+)")


def is_secret_name(name: str) -> bool:
    """True for names whose values are secrets: ``HF_TOKEN``, ``AWS_SECRET``, ``db_password``."""
    return bool(_SECRET_NAME.match(name)) and not _NOT_SECRET.match(name)


@final
@dataclasses.dataclass(frozen=True)
class Redactor:
    """Masks secrets in text and in nested mappings; built once per report."""

    known: tuple[str, ...] = ()
    _known_re: re.Pattern[str] | None = dataclasses.field(default=None, repr=False, compare=False)
    _seen: dict[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], *data: Any) -> Redactor:
        """Learn literal secret values from ``environ`` and from secret-named keys inside ``data``."""
        values = {v for k, v in environ.items() if is_secret_name(k) and isinstance(v, str)}
        for item in data:
            values.update(_secret_values(item))
        known = tuple(sorted((v for v in values if len(v) >= MIN_KNOWN_LEN and v != MASK), key=len, reverse=True))
        pattern = re.compile("|".join(map(re.escape, known))) if known else None
        return cls(known, pattern, {})

    def text(self, value: str) -> str:
        """``value`` with every secret masked (short strings repeat a lot in a report: memoised)."""
        if len(value) < 4:
            return value
        if len(value) <= 120:
            done = self._seen.get(value)
            if done is None:
                done = self._seen[value] = self._mask(value)
            return done
        return self._mask(value)

    def mask(self, value: str) -> str:
        """``value`` with every secret masked, not memoised (for streams of distinct lines: logs)."""
        return self._mask(value) if len(value) >= 4 else value

    def _mask(self, value: str) -> str:
        if self._known_re is not None:
            value = self._known_re.sub(MASK, value)
        if "=" in value or ":" in value or "-" in value:
            value = _ASSIGN.sub(_mask_assigned, value)
            value = _FLAG.sub(_mask_group3, value)
            value = _URL.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", value)
            value = _BEARER.sub(lambda m: m.group(1) + MASK, value)
        return value

    def value(self, data: Any) -> Any:
        """A copy of ``data`` (mappings, lists, strings) with secret-named keys and secret text masked."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            return {k: (MASK if is_secret_name(str(k)) and v not in (None, "") else self.value(v)) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.value(v) for v in data]
        return data

    def finalize(self, value: Any) -> Any:
        """Jinja ``finalize`` hook: every ``{{ expression }}`` of every template passes through here."""
        if isinstance(value, str):
            return self.text(value)
        if value is None:
            return ""
        return value


def _mask_assigned(m: re.Match[str]) -> str:
    return m.group(0) if _NOT_SECRET.match(m.group(1)) else _mask_group3(m)


def _mask_group3(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + MASK


def _secret_values(data: Any) -> Iterable[str]:
    if isinstance(data, Mapping):
        for k, v in data.items():
            if is_secret_name(str(k)) and isinstance(v, str):
                yield v
            else:
                yield from _secret_values(v)
    elif isinstance(data, (list, tuple)):
        for v in data:
            yield from _secret_values(v)
