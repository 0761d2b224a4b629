"""Partitioned Parquet: a glob, a folder or an object-store URL, read a row group at a time.

Only the files' footers are read up front (row counts, schema, null counts), so opening a
billion-row dataset is cheap and every row has a global number: the files sorted by name,
then row groups in order. A *partition* is one row group; a streaming scan reads it in
batches, so neither engine ever needs more than one batch of one partition in memory.

Paths go through fsspec: ``s3://`` (s3fs), ``gs://``, ``abfs://`` or local paths alike, with
``storage_options`` passed to the filesystem as Dask's ``read_parquet`` does.
"""

from __future__ import annotations

import dataclasses
import glob as globlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError, require
from failwell.scale import pruning
from failwell.scale.pruning import Bounds

BATCH_ROWS = 1_000_000  # rows per batch: ~250 MB for 30 numeric columns in pandas
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


@dataclass(frozen=True)
class Partition:
    path: str
    row_group: int
    offset: int  # the global number of its first row
    rows: int


@dataclass
class ParquetSource:
    """The partitions behind a URL; picklable, so Dask ships it to workers as is."""

    url: str
    partitions: list[Partition]
    columns: list[str]
    float_columns: frozenset[str] = frozenset()  # integers with a null somewhere
    storage_options: dict[str, Any] = field(default_factory=dict)
    always: frozenset[str] = frozenset()  # read by every pass (a row filter's columns)
    # Hive-style folders (``region=east/part-0.parquet``): the columns they name, and each
    # file's values, as Spark, Dask and pyarrow read them
    folder_columns: tuple[str, ...] = ()
    folder_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    files_skipped: int = 0  # files --where could match no row of (never read)
    row_groups_skipped: int = 0  # row groups likewise, those files' included

    def filtered_by(self, where: str | None) -> ParquetSource:
        """This source, reading too the columns a ``where`` expression may name."""
        if not where:
            return self
        named = frozenset(c for c in self.columns if c in where)
        return dataclasses.replace(self, always=named)

    def without_unmatched(self, where: str, file_bounds: list[Bounds]) -> ParquetSource:
        """Without the partitions that ``where`` cannot match (see :mod:`.pruning`), given
        each partition's bounds from its footer; the folder columns add their values."""
        tree = pruning.parse(where)
        kept: list[Partition] = []
        offset = 0
        for part, bounds in zip(self.partitions, file_bounds, strict=True):
            folder = {k: (v, v, False) for k, v in self.folder_values.get(part.path, {}).items()
                      if v is not None}
            if pruning.may_match(tree, bounds | folder):
                kept.append(dataclasses.replace(part, offset=offset))  # renumbered
                offset += part.rows
        if not kept:
            raise InputError(f"No rows are left after --where {where!r}: the partitions' "
                             "statistics and folder names rule every one of them out.")
        files = {p.path for p in self.partitions}
        return dataclasses.replace(self, partitions=kept,
                                   files_skipped=len(files) - len({p.path for p in kept}),
                                   row_groups_skipped=len(self.partitions) - len(kept))

    @property
    def n_rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    @property
    def files(self) -> int:
        return len({p.path for p in self.partitions})

    def batches(self, part: Partition, columns: list[str] | None = None,
                batch_rows: int = BATCH_ROWS) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """The partition's rows in batches: (frame, global row numbers)."""
        import pyarrow.parquet as pq

        asked = None if columns is None else set(columns)
        wanted = [c for c in self.columns if asked is None or c in asked or c in self.always]
        in_file = [c for c in wanted if c not in self.folder_columns]
        from_folder = [c for c in wanted if c in self.folder_columns]
        fs = _filesystem(self.url, self.storage_options)[0]

        def unreadable(exc: Exception) -> InputError:
            return InputError(f"Could not read {fs.unstrip_protocol(part.path)} (row group "
                              f"{part.row_group}): {type(exc).__name__}: {exc}")

        offset = part.offset
        try:
            fh = fs.open(part.path, "rb")
            batches = pq.ParquetFile(fh).iter_batches(
                batch_size=batch_rows, row_groups=[part.row_group], columns=in_file)
        except Exception as exc:
            raise unreadable(exc) from exc
        with fh:
            while True:
                try:
                    batch = next(batches, None)
                except Exception as exc:  # storage gone mid-scan, a corrupt page
                    raise unreadable(exc) from exc
                if batch is None:
                    return
                frame = batch.to_pandas()
                if not in_file:  # only folder columns asked for: the rows still count
                    frame = pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
                if from_folder:
                    for col in from_folder:
                        frame[col] = _constant(self.folder_values[part.path][col], len(frame))
                    frame = frame[wanted]
                for col in self.float_columns.intersection(wanted):
                    frame[col] = frame[col].astype(float)  # as one frame of the whole reads
                yield frame, np.arange(offset, offset + len(frame), dtype=np.int64)
                offset += len(frame)


STREAM_BYTES = 2_000_000_000  # a single Parquet file holding more (uncompressed) streams


def is_partitioned(text: str) -> bool:
    """A glob, a folder or a URL: data the streaming engines read partition by partition."""
    if "://" in text or any(ch in text for ch in "*?["):
        return True
    return Path(text).is_dir()


def should_stream(text: str) -> bool:
    """What ``--engine auto`` streams: partitioned data, and a single Parquet file whose
    footer says it holds more than :data:`STREAM_BYTES` of column data (a pandas frame of
    it would need several times that)."""
    if is_partitioned(text):
        return True
    if not text.lower().endswith(PARQUET_SUFFIXES) or not Path(text).is_file():
        return False
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(text)
    except Exception:  # not Parquet after all: the in-memory reader says why
        return False
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return size > STREAM_BYTES


def open_parquet(url: str, storage_options: dict[str, Any] | None = None,
                 where: str | None = None) -> ParquetSource:
    """Resolve the files and read their footers; one clear :class:`InputError` otherwise.
    With ``where``, the partitions it cannot match are left out
    (:meth:`ParquetSource.without_unmatched`)."""
    options = dict(storage_options or {})
    fs, root = _filesystem(url, options)
    fs.invalidate_cache()  # fsspec caches listings per process: a rerun must see new files
    try:
        paths = _resolve(fs, root, url)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"Could not list {url}: {type(exc).__name__}: {exc}") from exc
    # footers are read in parallel: on object storage each is a round trip or two
    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        footers = list(pool.map(lambda path: _footer(fs, path), paths))
    partitions, nulls, offset = [], set(), 0
    schema, columns = None, []
    named = pruning.names(pruning.parse(where)) if where else set()
    bounds: list[Bounds] = []
    for path, (meta, file_schema) in zip(paths, footers, strict=True):
        names = [n for n in file_schema.names if not n.startswith("__index_level_")]
        if schema is None:
            schema, columns = file_schema, names
        elif names != columns:
            raise InputError(f"{path} has columns {names[:8]}..., unlike the first file's "
                             f"{columns[:8]}...: every partition needs the same schema.")
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            if group.num_rows:
                partitions.append(Partition(path, rg, offset, group.num_rows))
                offset += group.num_rows
                bounds.append(_bounds(group, named) if named else {})
            nulls |= _columns_with_nulls(group, names)
    if not partitions:
        raise InputError(f"{url} has no rows.")
    import pyarrow as pa

    ints = {n for n in columns if pa.types.is_integer(schema.field(n).type)}
    keys, values, folder_ints = folder_partitions(paths, _base(root), columns)
    source = ParquetSource(url, partitions, columns + keys,
                           frozenset(ints & nulls) | folder_ints, options,
                           folder_columns=tuple(keys), folder_values=values)
    return source.without_unmatched(where, bounds) if named else source


def _bounds(group: Any, named: set[str]) -> Bounds:
    """A row group's (min, max, may hold a null) for the named columns with statistics."""
    out: Bounds = {}
    for i in range(group.num_columns):
        column = group.column(i)
        stats = column.statistics
        if column.path_in_schema not in named or stats is None or not stats.has_min_max:
            continue
        # NaN is not a null in Parquet and not in the statistics, yet passes `!=`
        nulls = (not stats.has_null_count or stats.null_count > 0
                 or stats.physical_type in ("FLOAT", "DOUBLE"))
        out[column.path_in_schema] = (stats.min, stats.max, nulls)
    return out


HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def folder_partitions(paths: list[str], base: str, columns: list[str]
                      ) -> tuple[list[str], dict[str, dict[str, Any]], frozenset[str]]:
    """Columns named by ``key=value`` folders between ``base`` and each file, as Spark's
    ``partitionBy`` writes them: the keys (in folder order), each file's values (URL-decoded,
    numbers where every value of a key is one, Hive's null marker as a null), and the integer
    keys that have a null (read as floats, as for integer columns with nulls)."""
    from urllib.parse import unquote

    found: dict[str, dict[str, str]] = {}
    for path in paths:
        folders = path[len(base):].strip("/").split("/")[:-1] if path.startswith(base) else []
        found[path] = dict(f.split("=", 1) for f in folders if "=" in f and f[0] != "=")
    keys = list(found[paths[0]]) if paths else []
    for path, got in found.items():
        if list(got) != keys:
            raise InputError(f"{path} sits in folders {list(got) or 'without key=value'}, "
                             f"unlike {paths[0]}'s {keys or 'none'}: every file needs the "
                             "same partition folders.")
    keys = [k for k in keys if k not in columns]  # a column the files hold wins
    values = {p: {k: None if got[k] == HIVE_NULL else unquote(got[k]) for k in keys}
              for p, got in found.items()}
    ints_with_nulls = set()
    for key in keys:
        seen = [v[key] for v in values.values() if v[key] is not None]
        parsed = _numbers(seen)
        if parsed is None:
            continue
        lookup = dict(zip(seen, parsed, strict=True))
        for v in values.values():
            v[key] = None if v[key] is None else lookup[v[key]]
        if isinstance(parsed[0], int) and len(seen) < len(values):
            ints_with_nulls.add(key)
    return keys, values, frozenset(ints_with_nulls)


def _numbers(texts: list[str]) -> list[int] | list[float] | None:
    """The values as ints, else as floats, else None (a key of words stays text)."""
    for kind in (int, float):
        try:
            return [kind(t) for t in texts] if texts else None
        except ValueError:
            continue
    return None


def _constant(value: Any, n: int) -> Any:
    if value is None:
        return pd.Series([None] * n, dtype=object)
    return np.full(n, value, dtype=object if isinstance(value, str) else None)


def _base(root: str) -> str:
    """The folder above a glob's first wildcard (or the folder itself)."""
    if not globlib.has_magic(root):
        return root.rstrip("/")
    parts = root.split("/")
    fixed = next(i for i, part in enumerate(parts) if globlib.has_magic(part))
    return "/".join(parts[:fixed])


def _footer(fs: Any, path: str) -> tuple[Any, Any]:
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as fh:
            meta = pq.ParquetFile(fh).metadata
            return meta, meta.schema.to_arrow_schema()
    except Exception as exc:
        raise InputError(f"Could not read the Parquet footer of {fs.unstrip_protocol(path)}: "
                         f"{exc}") from exc


def _columns_with_nulls(group: Any, names: list[str]) -> set[str]:
    """Columns that may hold a null in this row group (no statistics: assume they may)."""
    out = set()
    for i in range(group.num_columns):
        column = group.column(i)
        name = column.path_in_schema
        stats = column.statistics
        if name in names and (stats is None or not stats.has_null_count or stats.null_count):
            out.add(name)
    return out


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    fsspec = require("fsspec", extra="dask", purpose="Reading partitioned data")
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        raise InputError(f"Reading {protocol}:// needs its fsspec filesystem: {exc}") from exc
    except Exception as exc:
        raise InputError(f"Could not open {url}: {type(exc).__name__}: {exc}") from exc


def _resolve(fs: Any, root: str, url: str) -> list[str]:
    """Files behind a glob, a folder (recursively, hidden and _metadata files skipped) or a
    single file, sorted so that row numbers are the same on every run."""
    if globlib.has_magic(root):
        paths = [p for p in fs.glob(root) if not fs.isdir(p)]
    elif fs.isdir(root):
        paths = [p for p in fs.find(root) if p.lower().endswith(PARQUET_SUFFIXES)
                 and not any(part.startswith(("_", "."))
                             for part in p[len(root.rstrip("/")):].split("/"))]
    elif fs.exists(root):
        paths = [root]
    else:
        raise InputError(f"No such file or folder: {url}")
    if not paths:
        raise InputError(f"No Parquet files match {url}.")
    return sorted(paths)
