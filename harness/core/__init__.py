"""The core toolkit (layer 1 of docs/architecture.md): the dataset format (store, writer), typed configs, user-error
types, run identity, locks, atomic writes and parallel maps. Imports nothing else of ours."""
from harness.core.errors import ConfigError, DatasetError, UserError
from harness.core.store import EpisodeStore, StoreSummary, validate
from harness.core.writer import EpisodeWriter

__all__ = ["ConfigError", "DatasetError", "UserError", "EpisodeStore", "StoreSummary", "validate", "EpisodeWriter"]
