"""Data sources and loaders. Everything here yields uint8 images; floats begin on the device."""
