"""The bottom layer: helpers every other module may use and that import nothing else of ignite_cv.

``atomic`` (every file write), ``errors`` (one-line user errors), ``options`` (config fields and the
flags made from them), ``modules`` (unwrap, parameter counts), ``text`` (tables, number formats),
``distributed`` (backend choice, leaving together), ``devices``, ``allocator``, ``background_writer``.
"""
