"""Offline real data sets as tfds GeneratorBasedBuilders (array_record, Tensor features, read without TensorFlow).

Builders are prepared once into a data dir and read back through `tfds` data sources; nothing here downloads.
"""
