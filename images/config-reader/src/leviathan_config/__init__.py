"""The shared reader of the Leviathan autonomy config file."""

from leviathan_config.reader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    MAX_CONFIG_BYTES,
    MAX_EXPANDED_SIZE,
    SOURCE_ERROR,
    SOURCE_NOT_MOUNTED,
    AutonomyConfig,
    ConfigState,
    NotARegularFile,
    config_path_from_env,
    configmap_source,
    is_transient,
    parse_autonomy_config,
    printable,
    read_autonomy_config,
    read_mounted_file,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "MAX_CONFIG_BYTES",
    "MAX_EXPANDED_SIZE",
    "SOURCE_ERROR",
    "SOURCE_NOT_MOUNTED",
    "AutonomyConfig",
    "ConfigState",
    "NotARegularFile",
    "config_path_from_env",
    "configmap_source",
    "is_transient",
    "parse_autonomy_config",
    "printable",
    "read_autonomy_config",
    "read_mounted_file",
]
