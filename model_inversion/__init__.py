"""The command lines of the model-inversion distribution, and its shipped configs.

``model_inversion.train`` (``inversion-train``), ``model_inversion.evaluate``
(``inversion-evaluate``) and ``model_inversion.generate`` (``inversion-generate``); the
repository's ``train.py``, ``evaluate.py`` and ``generate.py`` only call them. The configs
are installed as ``model_inversion/configs`` and named relative to it
(``--config digits/classifier.yaml``, see :mod:`model_inversion.config_files`). The
Python API is the ``inversion`` package.
"""
