# Copyright (c) mmaffseg contributors. All rights reserved.
"""How the pseudo-label job runs the CAM network: ``test_cfg.cam_inference`` settings.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the multi-scale, flipped CAM inference
(:func:`~mmaffseg.wsss.cam.multi_scale_cam`) is most of a pseudo-label run's time. The official
code runs it in float32, one scale at a time, each image with its flip as a batch of 2; so does
:class:`PreparedCAM` with every setting off. The settings (keys of ``cam_inference``):

=================  =========================================================================
setting            effect
=================  =========================================================================
``fold_bn``        fold every eval-mode BatchNorm that directly follows a convolution into the
                   convolution (a traced copy of the network; float32 rounding only)
``channels_last``  run the network in channels-last memory format (float32 rounding only)
``amp``            ``'bf16'`` / ``'fp16'``: autocast the network to that precision (the CAMs
                   are summed in float32); changes labels: see the PSA model card
=================  =========================================================================

Defaults (:data:`CAM_INFERENCE_DEFAULTS`): ``fold_bn`` on, ``channels_last='auto'`` (on for
CUDA, off on CPU, where it was not faster in float32), ``amp`` off on every device (bf16
changed more than 0.1 % of the CAM labels on some synthetic images and weights). A pseudo-label
folder's provenance records the CAM precision unless it is float32
(:mod:`~mmaffseg.wsss.pseudo_label_provenance`), so CAMs of one precision are never reused as
another's. The network runs under ``torch.inference_mode``.
"""
import difflib
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mmaffseg.utils.config_errors import ConfigCheckError

#: The loop's ``cam_inference`` defaults.
CAM_INFERENCE_DEFAULTS: Mapping[str, Any] = dict(amp=None, channels_last='auto', fold_bn=True)
#: ``amp`` values and their dtypes.
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
#: The name the errors give the settings.
SETTING = 'test_cfg.cam_inference'


@dataclass(frozen=True)
class CAMInference:
    """Resolved CAM inference settings (see the module docstring); build with
    :func:`resolve_cam_inference`.

    Args:
        amp (str, optional): ``'bf16'``, ``'fp16'`` or None (float32).
        channels_last (bool): Channels-last memory format.
        fold_bn (bool): Fold BatchNorms into the preceding convolutions.
    """

    amp: Optional[str] = None
    channels_last: bool = False
    fold_bn: bool = False

    @property
    def precision(self) -> str:
        """``'fp32'``, ``'bf16'`` or ``'fp16'``: what the CAMs are computed in."""
        return self.amp or 'fp32'


def _flag(value: Any, key: str, auto: Optional[bool] = None) -> bool:
    if value == 'auto' and auto is not None:
        return auto
    if not isinstance(value, bool):
        allowed = 'True, False or \'auto\'' if auto is not None else 'True or False'
        raise ConfigCheckError(f'{SETTING}.{key} must be {allowed}, got {value!r}')
    return value


def resolve_cam_inference(cfg: Optional[Mapping] = None,
                          device: Union[str, torch.device] = 'cpu') -> CAMInference:
    """:data:`CAM_INFERENCE_DEFAULTS` updated by ``cfg``, checked, ``'auto'`` resolved for
    ``device``.

    Args:
        cfg (Mapping, optional): ``test_cfg.cam_inference``. Default: None (the defaults).
        device (str | torch.device): Where the CAM network runs.

    Returns:
        CAMInference: The settings.

    Raises:
        ConfigCheckError: An unknown key or a bad value (one line naming the setting).
    """
    if cfg is not None and not isinstance(cfg, Mapping):
        raise ConfigCheckError(f'{SETTING} must be a dict (e.g. dict(amp=\'bf16\')), got '
                               f'{type(cfg).__name__}')
    unknown = sorted(set(cfg or {}) - set(CAM_INFERENCE_DEFAULTS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(CAM_INFERENCE_DEFAULTS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ''
        raise ConfigCheckError(f"{SETTING}: unknown key '{unknown[0]}'{hint}; the keys are "
                               f"{', '.join(CAM_INFERENCE_DEFAULTS)}")
    settings = {**CAM_INFERENCE_DEFAULTS, **(cfg or {})}
    device = torch.device(device)
    amp = settings['amp']
    if amp is not None and amp not in AMP_DTYPES:
        raise ConfigCheckError(f"{SETTING}.amp must be None (float32), 'bf16' or 'fp16', "
                               f'got {amp!r}')
    if amp == 'bf16' and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise ConfigCheckError(f"{SETTING}.amp='bf16': this GPU has no bfloat16 support; use "
                               "'fp16' or None")
    return CAMInference(amp=amp,
                        channels_last=_flag(settings['channels_last'], 'channels_last',
                                            auto=device.type == 'cuda'),
                        fold_bn=_flag(settings['fold_bn'], 'fold_bn'))


def model_device(model) -> torch.device:
    """The device of ``model``'s first parameter (CPU without parameters)."""
    param = next(iter(model.parameters()), None) if hasattr(model, 'parameters') else None
    return param.device if param is not None else torch.device('cpu')


class _ForwardCAM(nn.Module):
    """``model.forward_cam`` as a module's ``forward`` (what is traced)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model.forward_cam(inputs)


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent, _, name = target.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, name, module)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """``model.forward_cam`` traced (``torch.fx``) with every eval-mode ``BatchNorm2d`` that
    only reads a ``Conv2d`` (read by nothing else) folded into a copy of that convolution.

    The result shares the other modules with ``model``, which is left unchanged.

    Args:
        model (nn.Module): The CAM network (``forward_cam``), in eval mode.

    Returns:
        nn.Module: ``inputs -> CAMs``.

    Raises:
        Exception: Whatever ``torch.fx`` raises for a network it cannot trace.
    """
    traced = torch.fx.symbolic_trace(_ForwardCAM(model))
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        bn = modules.get(node.target) if node.op == 'call_module' else None
        if not (isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.track_running_stats
                and len(node.args) == 1 and isinstance(node.args[0], torch.fx.Node)):
            continue
        conv_node = node.args[0]
        conv = modules.get(conv_node.target) if conv_node.op == 'call_module' else None
        if type(conv) is not nn.Conv2d or len(conv_node.users) != 1 or conv.training:
            continue
        fused = fuse_conv_bn_eval(conv, bn)
        _set_submodule(traced, conv_node.target, fused)  # the traced copy's, not model's
        modules[conv_node.target] = fused
        node.replace_all_uses_with(conv_node)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


class PreparedCAM:
    """The CAM network run as :class:`CAMInference` says; has ``forward_cam`` like the model,
    so it is the ``cam_model`` of :func:`~mmaffseg.wsss.pseudo_label_stages.compute_cams`.

    With ``channels_last`` the model's 4-D weights are converted in place (the same values).
    A network that ``torch.fx`` cannot trace runs unfolded (logged once).

    Args:
        model (nn.Module): The CAM classifier (``forward_cam``), in eval mode.
        settings (CAMInference): How to run it.
    """

    def __init__(self, model: nn.Module, settings: CAMInference) -> None:
        self.model = model
        self.settings = settings
        self.device = model_device(model)
        net: nn.Module = _ForwardCAM(model)
        if settings.fold_bn:
            try:
                net = fold_batchnorm(model)
            except Exception as e:  # noqa: BLE001 - an untraceable network runs unfolded
                print_log(f'cam_inference.fold_bn: {type(model).__name__} cannot be traced '
                          f'({type(e).__name__}: {e}); running it without folding',
                          logger='current')
        if settings.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    def forward_cam(self, inputs: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` -> float32 CAMs ``(N, C, h, w)`` (contiguous)."""
        amp = AMP_DTYPES.get(self.settings.amp)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=amp,
                                                    enabled=amp is not None):
            if self.settings.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            cams = self.net(inputs).float().contiguous()
        return cams.clone()  # a normal tensor: the caller may use it outside inference mode

    __call__ = forward_cam
