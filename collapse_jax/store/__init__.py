"""The on-disk format of a workdir (metric files, artifacts, run metadata): written by the host, read by analysis."""
