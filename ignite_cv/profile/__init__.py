"""Profiling: one model's cost (:mod:`.model`, ``tools/profile.py``) and a training run's time (:mod:`.run`,
``--profile``), their reports (:mod:`.report`) and the Ignite work-arounds they need
(:mod:`.ignite_profilers`). Importing the package imports nothing heavy."""
