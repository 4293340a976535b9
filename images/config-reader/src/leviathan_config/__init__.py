"""The shared reader of the Leviathan autonomy config file."""

from leviathan_config.reader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    MAX_CONFIG_BYTES,
    SOURCE_ERROR,
    SOURCE_NOT_MOUNTED,
    AutonomyConfig,
    ConfigState,
    config_path_from_env,
    read_autonomy_config,
    read_mounted_file,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "MAX_CONFIG_BYTES",
    "SOURCE_ERROR",
    "SOURCE_NOT_MOUNTED",
    "AutonomyConfig",
    "ConfigState",
    "config_path_from_env",
    "read_autonomy_config",
    "read_mounted_file",
]
