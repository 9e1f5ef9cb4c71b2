"""Training: ``fit`` (:mod:`.fit`, a run as named stages), the one epoch loop every phase runs on
(:mod:`.loop`), what a run writes (:mod:`.run_output`) and resuming (:mod:`.resume`).

Import the module you need (``from ignite_cv.training.fit import fit``); this package imports nothing.
"""
