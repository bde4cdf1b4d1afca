"""Capture: how frames reach the native engines (files, live rings, workers)."""
