"""Simulators of the dnpu (functional here; timing and accuracy models live beside it)."""
