"""Studies: compare finished runs (``tools/compare.py``) — read run folders, tabulate, draw the figures.

``runs`` reads run and study folders, ``table`` finds the config fields that differ and builds the
metrics table, ``figures`` draws the comparison figures, ``compare`` writes them all into one folder.
They only read run folders (``config.json``, ``metrics.jsonl``, ``summary.json``, ``report/``), so
they work on any run, including runs made before studies existed.
"""
