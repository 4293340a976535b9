"""Object names as the chart makes them (chart/templates/_helpers.tpl), from the release and environment.

Same rule as the Makefile's PREFIX/CRONJOB/CONFIGMAP lines: the prefix is the release name when it
contains "leviathan", else `<release>-leviathan` (nameOverride and fullnameOverride are not followed).
"""

from __future__ import annotations

from dataclasses import dataclass

SWITCHED_BY = "autonomy.leviathan.io/switched-by"
CHART_LABEL = "helm.sh/chart"


def short_name(prefix: str, suffix: str, limit: int) -> str:
    """The chart's leviathan.shortName: a long prefix is cut so that the suffix stays, within `limit`."""
    room = limit - len(suffix)
    if room > 0:
        return f"{prefix[:room].rstrip('-')}{suffix}"[:limit].rstrip("-")
    return f"{prefix}{suffix}"[:limit].rstrip("-")


@dataclass(frozen=True)
class Names:
    release: str = "leviathan"
    namespace: str = "leviathan"
    env: str = "dev"

    @property
    def prefix(self) -> str:
        name = self.release if "leviathan" in self.release else f"{self.release}-leviathan"
        return name[:63].rstrip("-")

    @property
    def configmap(self) -> str:
        return f"{self.prefix}-autonomy-config"[:63].rstrip("-")

    @property
    def config_key(self) -> str:
        return f"{self.env}.yaml"

    @property
    def cronjob(self) -> str:
        return short_name(self.prefix, f"-{self.env}-scheduler", 52)

    @property
    def worker_app(self) -> str:
        return short_name(self.prefix, "-worker", 63)

    @property
    def fleet_record(self) -> str:
        """The ConfigMap a fleet brake creates (owned by the autonomy ConfigMap) to record the prior state."""
        return f"{self.prefix}-fleet-brake"[:63].rstrip("-")
