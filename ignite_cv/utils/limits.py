"""Sane bounds on sizes and counts read from files (labels, checkpoint metadata, data headers).

A value read from a file decides how much memory is allocated next: one label of 10⁹ in an ``.npz``
makes a billion class names and a billion-way head, an ``image_size`` of 10⁶ in a checkpoint's card a
classifier of 10¹² weights. Every such value is checked against these bounds before anything is
allocated, and refused in one line that names the file and the value.
"""

from __future__ import annotations

#: Most classes a data set or checkpoint may have (ImageNet-21k has about 21,800).
MAX_CLASSES = 100_000
#: Longest image side in pixels (a training input; whole-slide images are tiled before training).
MAX_IMAGE_SIDE = 8192
