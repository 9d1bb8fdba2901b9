"""Widgets of the TUI; each declares the messages it posts."""
