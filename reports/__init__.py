"""Report rendering: data (harness.reports.data) kept apart from templates (reports/templates)."""
