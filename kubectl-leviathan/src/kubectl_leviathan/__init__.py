"""kubectl leviathan: the operators' runbook as a kubectl plugin, for one cluster or a fleet."""
