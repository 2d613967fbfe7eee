"""The ``sweep`` command line: ``main`` builds the parser and dispatches; one module per
command (``run``, ``show``, ``validate``, ``data``, ``report``, ``compare``, ``portfolio``,
``live`` for export and check); ``kind_*`` modules are the kinds' ``show`` sections (named by
the kind registry), ``common`` what the commands share.
"""
