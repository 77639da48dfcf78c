"""Booting a cell: server processes, leases, preflight, device inventory, venvs, scratch dirs, boot ahead."""
