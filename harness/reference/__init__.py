"""The reference a cell is compared with: produced by a reference runtime, stored, travelling as golden files."""
