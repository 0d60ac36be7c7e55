"""The host side: the chunk loop (runner), config expansion and validation, Orbax checkpoints, devices,
monitoring and CLI helpers."""
