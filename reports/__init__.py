"""Report rendering: data (reports.data) kept apart from templates (reports/templates)."""
