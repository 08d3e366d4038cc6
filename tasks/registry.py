# Transitional: moved to core (errors, Registry, did_you_mean). Removed once every import is updated.
from core import *  # noqa: F401,F403
from core import ConfigError, Registry, RewardError, RunError, did_you_mean, first_line  # noqa: F401
