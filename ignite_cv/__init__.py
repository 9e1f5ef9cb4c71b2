"""ignite_cv: image-classification training on PyTorch Ignite.

Data flows one way: source → uint8 batches → device → batch pipeline (augment, normalize)
→ model → loss/metrics → handlers → run folder. See docs/architecture.md for the module map.
"""

__version__ = "0.1.0"
