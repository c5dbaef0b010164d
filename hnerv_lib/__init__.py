"""hnerv_lib: HNeRV video representations that also predict CLIP embeddings.

The notebooks in ``notebooks/`` orchestrate; this package computes. Modules, one concept each:
``io`` (atomic files, hashing), ``split``, ``geometry``, ``data``, ``clip_targets``, ``metrics``,
``losses``, ``schedule``, ``params``, ``report``, ``models``.
"""

__version__ = "0.1.0"
