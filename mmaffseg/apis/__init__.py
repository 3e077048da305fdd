# Copyright (c) mmaffseg contributors. All rights reserved.
"""Inference with every mmaffseg model from users' code, with mmseg's arguments:
:func:`init_model` (mmaffseg's safe checkpoint loading) and :func:`show_result_pyplot`.
The tools' own logic (config checks, runners, errors) is :mod:`mmaffseg.cli`."""

from .inference import config_dataset_meta, init_model, show_result_pyplot

__all__ = ['config_dataset_meta', 'init_model', 'show_result_pyplot']
