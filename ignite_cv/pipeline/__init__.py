"""The batch pipeline: uint8 batches → float → augmentation (training only) → normalization, on the device."""
