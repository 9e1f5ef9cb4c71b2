"""Class order: the positive class moves to index 1, a data set follows a checkpoint's order."""

from __future__ import annotations

import pytest
import torch

from ignite_cv.data.classes import class_counts, positive_last, reorder_classes
from ignite_cv.data.splits import DataBundle, Split
from ignite_cv.utils.errors import UserError


def _bundle() -> DataBundle:
    def split(labels):
        labels = torch.tensor(labels)
        return Split(labels=labels, images=labels.to(torch.uint8).view(-1, 1, 1, 1).clone())

    return DataBundle(
        "b", split([0, 0, 0, 1]), split([0, 1]), split([1, 1, 0]), ["benign", "malign"], 1, (1, 1)
    )


def test_the_positive_class_moves_last_and_every_split_is_relabelled():
    assert positive_last(["benign", "malign"], "") == ["benign", "malign"]
    order = positive_last(["benign", "malign"], "benign")
    assert order == ["malign", "benign"]
    flipped = reorder_classes(_bundle(), order)
    assert flipped.class_names == ["malign", "benign"]
    assert flipped.train.labels.tolist() == [1, 1, 1, 0] and flipped.test.labels.tolist() == [0, 0, 1]
    # the images stay with their samples: image k still holds its original label
    assert flipped.train.images.flatten().tolist() == [0, 0, 0, 1]
    assert class_counts(flipped.train, 2) == [1, 3]
    assert reorder_classes(_bundle(), ["benign", "malign"]).train.labels.tolist() == [0, 0, 0, 1]


def test_a_positive_class_that_is_not_a_class_or_several_classes_are_user_errors():
    with pytest.raises(
        UserError, match="--positive-class 'Malign' is not a class of the data .*pass one of: a, b"
    ):
        positive_last(["a", "b"], "Malign")
    with pytest.raises(UserError, match="is for two classes; the data has 3"):
        positive_last(["a", "b", "c"], "a")
    with pytest.raises(ValueError, match="not a reordering"):
        reorder_classes(_bundle(), ["benign", "other"])
