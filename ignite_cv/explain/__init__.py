"""Where a model looks: class activation maps (Grad-CAM, Grad-CAM++, Score-CAM) and feature maps.

Modules, one concern each: ``cam`` (maps of a batch, through torchcam), ``layers`` (candidate and
automatic target layers), ``state`` (a model left as it was found), ``preprocess`` (a checkpoint card's
input pipeline), ``inputs`` (files, folders, zips, data-set splits), ``render`` (heat maps, overlays,
grids), ``feature_maps`` (per-layer activations), ``outputs`` (the tool's folder), ``progress``, ``run``
(``tools/explain.py`` below its parser) and ``report_cams`` (CAMs in a training run's report).
"""
