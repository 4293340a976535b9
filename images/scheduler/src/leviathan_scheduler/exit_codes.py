"""Exit codes of one tick; docs/RUNBOOK.md lists them for operators."""

from leviathan_config import ConfigState

EXIT_OK = 0  # tick done: autonomy off, nothing to do, or Jobs submitted
EXIT_UNEXPECTED = 1  # a bug, not an input: one line, and nothing more is submitted
# 2 is argparse's exit for a bad command line.
EXIT_CONFIG_NOT_MOUNTED = 3  # fail closed: the config file does not exist
EXIT_CONFIG_ERROR = 4  # fail closed: the config file is unreadable or invalid
EXIT_API_UNAVAILABLE = 5  # no credentials, or the API stayed unreachable through the retries
EXIT_API_FORBIDDEN = 6  # the API refused a call (401/403): RBAC
EXIT_API_REJECTED = 7  # the API rejected a request for another reason (e.g. 422)
EXIT_POLICY_REFUSED = 8  # the worker admission policy refused a create: autonomy is off in the live ConfigMap
EXIT_NOT_IN_FORCE = 9  # check-release-policy (helm test): the release restriction's policy or binding is missing
EXIT_CRONJOB_NOT_FOUND = 10  # fail closed: the tick's CronJob ($LEVIATHAN_CRONJOB) is not found (deleted: a brake)

# A config the scheduler cannot use, by the reader's state: it fails closed with these.
CONFIG_EXIT_CODES = {ConfigState.NOT_MOUNTED: EXIT_CONFIG_NOT_MOUNTED, ConfigState.ERROR: EXIT_CONFIG_ERROR}
