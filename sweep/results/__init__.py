"""A results folder: its schema, its manifest, and the one object that writes and reads it
(``ResultsFolder``: claims the folder, resumes from chunks, writes the manifest last,
reads every table back)."""

from sweep.results.folder import MANIFEST, ResultsFolder
from sweep.results.lock import FolderLock
from sweep.results.meta import manifest_head, read_json, versions
from sweep.results.schema import SCHEMA_VERSION, check_schema, read_manifest

__all__ = ["MANIFEST", "SCHEMA_VERSION", "FolderLock", "ResultsFolder", "check_schema", "manifest_head",
           "read_json", "read_manifest", "versions"]
