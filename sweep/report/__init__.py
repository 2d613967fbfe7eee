"""``sweep report``: one self-contained HTML page of a results folder.

``page`` builds and writes the page; ``folder`` reads a results folder; ``sections`` finds
each study kind's report section through the kind registry; one module per chart family
(``equity``, ``heatmap``, ``lines``) and per kind (``search`` for grid and Optuna,
``walk_forward``, ``monte_carlo``, ``portfolio``); ``base``, ``figures`` and ``answer`` hold
what they share.
"""
