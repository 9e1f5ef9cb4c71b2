"""Pruning: the history format and its replay (:mod:`.history`, used by the weights format), the pruning
core (:mod:`.core`), its options (:mod:`.options`), the prune-and-fine-tune workflow on the shared
epoch loop (:mod:`.workflow`) and its report (:mod:`.report`). Importing the package imports nothing
heavy."""
