"""Stage storage: JSONL shards plus a manifest written last.

A stage directory holds ``shard-00000.jsonl, shard-00001.jsonl, ...`` and, once the stage has finished,
``manifest.json``. Each shard is written to a temporary file and renamed, so a shard on disk is always whole; the
manifest is written only after the last shard. Hence:

- no manifest       → the stage was interrupted: its whole shards are kept and the stage resumes after them;
- a manifest        → the stage is complete and is reused as is (if its config matches the one asked for).

Every malformed line is reported with its file and line number, and nothing already written is lost.

Typical use inside a stage function::

    writer = StageWriter(out_dir, Rollout, config={"n": 4, "seed": 0})
    if writer.complete:
        return writer.records()
    todo = [p for p in problems if p.problem_id not in writer.done_keys]  # resume
    for chunk in batches(todo):
        writer.write(do_work(chunk))      # flushed to shards as they fill
    writer.finalize()
    return writer.records()
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from negrl.records import Record


R = TypeVar("R", bound=Record)
MANIFEST = "manifest.json"


class StageError(RuntimeError):
    """A stage directory cannot be used as asked (incomplete, or made with another config)."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines, atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def numbered_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number in the file, JSON object)``; blank lines are skipped but still counted, so a later
    error names the line an editor shows. A bad line raises ``ValueError`` naming ``file:line``."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file; a bad line raises ``ValueError`` naming ``file:line``."""
    for _, row in numbered_jsonl(path):
        yield row


def read_jsonl(path: str | os.PathLike, record_type: type[R] | None = None) -> list[Any]:
    """Read a JSONL file, optionally into records; errors name the file, the line and (for records) the field and
    its expected type."""
    out = []
    for lineno, row in numbered_jsonl(path):
        if record_type is None:
            out.append(row)
            continue
        try:
            out.append(record_type.from_row(row))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}:{lineno}: {e}") from None
    return out


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A stage's ``manifest.json`` / ``config.json``: a JSON object, or ``StageError`` naming the file and what is
    wrong (a bare ``JSONDecodeError`` would name neither)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StageError(f"{path}: corrupt {what} ({e.msg}: line {e.lineno}, column {e.colno}); delete the stage "
                         f"directory {path.parent} to redo it") from None
    except UnicodeDecodeError as e:
        raise StageError(f"{path}: corrupt {what} (not UTF-8 text: {e.reason}); delete the stage directory "
                         f"{path.parent} to redo it") from None
    if not isinstance(obj, dict):
        raise StageError(f"{path}: corrupt {what} (a JSON {type(obj).__name__}, expected an object)")
    return obj


def _normalise(config: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so tuples/lists and int/float keys compare the way they are stored.
    return json.loads(json.dumps(config or {}, sort_keys=True, default=str))


def redo_advice(directory: str | os.PathLike) -> str:
    """What a user can do about a stage directory made with other settings, from a recipe, the CLI or Python.

    Recipes and the ``negrl`` command have no ``overwrite`` switch: finished stages are reused by design, so redoing
    one with other settings is an explicit deletion of its directory or a new output directory for the run.
    """
    return (f"delete {directory} to redo this stage with the new settings, or write the run to another output directory "
            "(recipes and the negrl command: --output_dir DIR or --set output_dir=DIR; "
            "from Python: StageWriter(..., overwrite=True))")


class StageWriter:
    """Resumable writer of one stage's records (see the module docstring).

    Args:
        directory: The stage directory (created if missing).
        record_type: Record class stored in the shards.
        config: The settings that determine the stage's output. Resuming or reusing a directory made with a
            different config raises ``StageError`` rather than silently mixing outputs.
        shard_size: Records per shard; a killed run loses at most one unfinished shard of work.
        overwrite: Delete whatever the directory holds and start afresh.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        record_type: type[R],
        config: dict[str, Any] | None = None,
        shard_size: int = 2048,
        overwrite: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.record_type = record_type
        self.config = _normalise(config)
        self.shard_size = shard_size
        self._buffer: list[Record] = []
        self._records: list[Record] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for p in self.directory.iterdir():
                if p.name == MANIFEST or p.name.startswith("shard-") or p.name == "config.json":
                    p.unlink()
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink()  # a half-written shard from a killed run
        self._check_config()  # written only with the first shard (flush): an input error leaves no trace here
        self._shards = sorted(self.directory.glob("shard-*.jsonl"))
        for shard in self._shards:
            self._records.extend(read_jsonl(shard, record_type))
        self.complete = (self.directory / MANIFEST).exists()

    def _check_config(self) -> None:
        path = self.directory / "config.json"
        if path.exists():
            stored = read_json_object(path, "stage config")
            if stored != self.config:
                keys = sorted(k for k in set(stored) | set(self.config) if stored.get(k) != self.config.get(k))
                raise StageError(f"{self.directory} was made with a different config (differs in {keys}); "
                                 + redo_advice(self.directory))
        elif any(self.directory.glob("shard-*.jsonl")):
            raise StageError(f"{self.directory} holds shards but no config.json: which settings made them is "
                             "unknown; " + redo_advice(self.directory))

    def _write_config(self) -> None:
        """The stage's config, written together with its first shard (or its empty manifest)."""
        path = self.directory / "config.json"
        if not path.exists():
            _atomic_write_text(path, json.dumps(self.config, indent=2, sort_keys=True))

    @property
    def done_keys(self) -> set[str]:
        """Keys (``record.key``) of the records already on disk or buffered."""
        return {r.key for r in self._records} | {r.key for r in self._buffer}

    def write(self, records: Iterable[Record]) -> None:
        if self.complete:
            raise StageError(f"{self.directory} is already complete; cannot add records")
        for r in records:
            if not isinstance(r, self.record_type):
                raise TypeError(f"expected {self.record_type.__name__}, got {type(r).__name__}")
            self._buffer.append(r)
            if len(self._buffer) >= self.shard_size:
                self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        self._write_config()
        shard = self.directory / f"shard-{len(self._shards):05d}.jsonl"
        write_jsonl(shard, (r.to_row() for r in self._buffer))
        self._shards.append(shard)
        self._records.extend(self._buffer)
        self._buffer = []

    def finalize(self, **summary: Any) -> None:
        """Flush and write the manifest (last), marking the stage complete."""
        self.flush()
        self._write_config()  # a stage of no records has no shard
        manifest = {
            "record_type": self.record_type.__name__,
            "count": len(self._records),
            "shards": [p.name for p in self._shards],
            "config": self.config,
            "summary": _normalise(summary),
        }
        _atomic_write_text(self.directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        self.complete = True

    def records(self) -> list[Any]:
        return list(self._records) + list(self._buffer)


def is_complete(directory: str | os.PathLike) -> bool:
    return (Path(directory) / MANIFEST).exists()


def read_stage(directory: str | os.PathLike, record_type: type[R]) -> list[R]:
    """Read a *complete* stage; an interrupted one raises ``StageError`` instead of being trusted."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise StageError(f"{directory} is incomplete (no {MANIFEST}): rerun its stage to resume it")
    manifest = read_json_object(manifest_path, "manifest")
    if not isinstance(manifest.get("shards"), list) or not isinstance(manifest.get("count"), int):
        raise StageError(f"{manifest_path}: corrupt manifest (needs a 'shards' list and an integer 'count')")
    if manifest.get("record_type") != record_type.__name__:
        raise StageError(f"{directory} holds {manifest.get('record_type')} records, not {record_type.__name__}")
    out: list[R] = []
    for name in manifest["shards"]:
        if not (directory / name).is_file():
            raise StageError(f"{manifest_path} lists {name}, which is missing: delete {directory} to redo the stage")
        out.extend(read_jsonl(directory / name, record_type))
    if len(out) != manifest["count"]:
        raise StageError(f"{directory}: manifest says {manifest['count']} records, shards hold {len(out)}")
    return out


def ids_digest(ids: Iterable[str], length: int = 12) -> str:
    """A short stable digest of a sequence of record ids, to key a stage's config (never a security use)."""
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()[:length]


def cached_stage(
    directory: str | os.PathLike, record_type: type[R], make: Callable[[], list[R]], config: dict[str, Any]
) -> list[R]:
    """Reuse a complete stage made with the same ``config`` (another config raises ``StageError``), else make it."""
    directory, wanted = Path(directory), _normalise(config)
    if is_complete(directory):
        stored = read_json_object(directory / MANIFEST, "manifest").get("config") or {}
        if stored != wanted:
            keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            raise StageError(f"{directory} was made with another config (differs in {keys}: stored {stored}, "
                             f"asked {wanted}); " + redo_advice(directory))
        return read_stage(directory, record_type)
    records = make()
    write_stage(directory, records, record_type, config=config)
    return records


def write_stage(
    directory: str | os.PathLike, records: Iterable[Record], record_type: type[R], config: dict[str, Any] | None = None
) -> None:
    """Write a whole stage in one go (overwriting), manifest last."""
    writer = StageWriter(directory, record_type, config=config, overwrite=True)
    writer.write(records)
    writer.finalize()
