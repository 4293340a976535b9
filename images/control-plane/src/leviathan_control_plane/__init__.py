"""Leviathan control plane: the authenticated autonomy status API."""
