"""Scans past one process: partitioned Parquet streamed locally or spread over Dask workers.

    >>> from failwell.scale import open_dataset
    >>> ds = open_dataset("s3://bucket/decisions/", target="label", score="score",
    ...                   protected=["gender"], storage_options={"anon": False})
    >>> result = failwell.scan(ds, engine="dask", scheduler="tcp://10.0.0.5:8786")

See docs/scale.md for what each detector costs and what crosses the network.
"""

from failwell.scale.scan import PartitionedDataset, open_dataset, scan_partitioned

__all__ = ["PartitionedDataset", "open_dataset", "scan_partitioned"]
