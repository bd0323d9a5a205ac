"""Bottom layer: the dataset format, typed configs and user-error types. Imports nothing else of ours."""
from harness.data.errors import ConfigError, DatasetError, UserError
from harness.data.store import EpisodeStore, StoreSummary, validate
from harness.data.writer import EpisodeWriter

__all__ = ["ConfigError", "DatasetError", "UserError", "EpisodeStore", "StoreSummary", "validate", "EpisodeWriter"]
