"""Leviathan scheduler: one config-gated tick per run."""
