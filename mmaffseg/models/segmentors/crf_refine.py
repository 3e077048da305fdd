# Copyright (c) mmaffseg contributors. All rights reserved.
"""Dense-CRF refinement of any mmseg segmentor's predictions at test time.

Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs". ICLR 2015 (DeepLab's use of
the dense CRF of Kraehenbuehl and Koltun, NeurIPS 2011, as post-processing).

:class:`CRFRefineSegmentor` wraps a segmentor config (EncoderDecoder, CascadeEncoderDecoder or
anything else registered in mmseg's ``MODELS``). Training and ``tensor`` mode are the wrapped
model's, unchanged. ``predict`` runs the wrapped model, which returns ``seg_logits`` at the
original image size (padding removed, resized to ``ori_shape``, un-flipped), turns them into
probabilities (softmax; for a one-channel model, whose ``seg_logits`` mmseg stores as the
sigmoid probability p, ``[1 - p, p]``), runs
:class:`~mmaffseg.postprocessing.DenseCRF` with the original image, and writes
``pred_sem_seg = argmax Q``. ``seg_logits`` stay the network's logits.

Which image the CRF sees (``image_source``):

* ``'inputs'`` (default): the batch the model got, with the data preprocessor's normalisation
  undone (``x * std + mean``), padding removed, flipped back when the sample was flipped,
  bilinearly resized to ``ori_shape`` when the test pipeline resized it, rounded to uint8 and
  put in RGB order. It needs no file access and works for in-memory images
  (``inference_model(model, ndarray)``). When the pipeline keeps the original size (mmseg's
  Cityscapes / VOC test pipelines with ``keep_ratio`` at the native scale) this is the original
  image exactly, up to float rounding; otherwise it is the resized image resized back, slightly
  blurred.
* ``'img_path'``: the original file is read again from ``img_path`` (exact pixels at any test
  scale, one extra image read per sample).

Colour order: mmseg loads images BGR and the usual preprocessor (``bgr_to_rgb=True``) flips them
to RGB; the CRF gets RGB in both modes (with ``bgr_to_rgb=False`` the inputs are taken to be the
loader's BGR). The bilateral kernel uses one colour std for all channels, so the order matters
only to the lattice's rounding.

Checkpoints: the wrapper adds no parameters, and its state dict is the wrapped segmentor's, key
for key (``backbone.*``, ``decode_head.*``...). A checkpoint trained with the plain config loads
into the CRF config and vice versa.

Speed: the CRF runs on CPU, roughly 0.3-1 s per 375x500 image per core and several seconds per
Cityscapes frame; with ``crf=dict(workers=N)`` the images of a test batch are refined in N
processes.

Test-time augmentation: mmseg's ``SegTTAModel`` (``tools/test.py --tta``) recomputes
``pred_sem_seg`` from the averaged ``seg_logits`` of the augmented passes, so it would discard the
CRF result; run TTA with the plain config.
"""
import copy
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor

from ...postprocessing.dense_crf import DenseCRF
from ...utils.config_errors import ConfigCheckError
from ...utils.image_io import read_image
from ..utils.preprocessing import to_rgb, unnormalize, unpad

_SEGMENTOR_PREFIX = 'segmentor.'
IMAGE_SOURCES = ('inputs', 'img_path')


@MODELS.register_module()
class CRFRefineSegmentor(BaseSegmentor):
    """Any segmentor, with its test-time predictions refined by the dense CRF.

    Config example (an existing mmseg config, wrapped)::

        _base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py']
        custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
        model = dict(_delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
                     crf=dict(bilateral_sxy=121, bilateral_srgb=5, bilateral_compat=4))

    Args:
        segmentor (dict): Config of the wrapped segmentor, built from mmseg's ``MODELS``.
        crf (dict, optional): :class:`~mmaffseg.postprocessing.DenseCRF` arguments
            (``iterations``, ``gaussian_sxy``, ``gaussian_compat``, ``bilateral_sxy``,
            ``bilateral_srgb``, ``bilateral_compat``, ``scale_factor``, ``workers``...).
            None uses DenseCRF's defaults (PSA's settings). Defaults to None.
        image_source (str): ``'inputs'`` (undo the preprocessing of the model inputs) or
            ``'img_path'`` (re-read the original file). See the module docstring.
            Defaults to ``'inputs'``.
        train_cfg (dict, optional): If given, replaces the wrapped segmentor's ``train_cfg``.
        test_cfg (dict, optional): If given, replaces the wrapped segmentor's ``test_cfg``.
        data_preprocessor (dict, optional): The wrapped segmentor's preprocessor when its own
            config has none, or what its partial one (without ``type``) lacks. mmengine's
            ``Runner`` passes the config's top-level ``data_preprocessor`` to every model dict
            without one, which is what the wrapper's dict gets from mmseg's configs. A setting
            that differs from the wrapped segmentor's own raises ``ConfigCheckError`` naming
            both: the preprocessing is set under ``model.segmentor.data_preprocessor``.
        pretrained (str, optional): If given, passed to the wrapped segmentor.
        init_cfg (dict | list[dict], optional): Initialisation config of the wrapper.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 crf: OptConfigType = None,
                 image_source: str = 'inputs',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(segmentor, dict) or 'type' not in segmentor:
            raise TypeError('CRFRefineSegmentor: segmentor must be a model config dict with a '
                            f'"type" (e.g. _base_.model), got {type(segmentor).__name__}')
        if image_source not in IMAGE_SOURCES:
            raise ValueError(f'CRFRefineSegmentor: image_source must be one of {IMAGE_SOURCES}, '
                             f'got {image_source!r}')
        segmentor = ConfigDict(copy.deepcopy(segmentor))  # attribute access, as from a file
        for key, value in (('train_cfg', train_cfg), ('test_cfg', test_cfg),
                           ('pretrained', pretrained)):
            if value is not None:
                segmentor[key] = value
        _merge_data_preprocessor(segmentor, data_preprocessor)
        self.segmentor = MODELS.build(segmentor)
        # The runner preprocesses with model.data_preprocessor: make it the wrapped one.
        self.data_preprocessor = self.segmentor.data_preprocessor
        self.crf = crf if isinstance(crf, DenseCRF) else DenseCRF(**(crf or {}))
        self.image_source = image_source
        self.register_state_dict_post_hook(_drop_segmentor_prefix)
        self.register_load_state_dict_pre_hook(_add_segmentor_prefix)

    # Attributes mmseg tools read from an EncoderDecoder.
    @property
    def align_corners(self) -> bool:
        return getattr(self.segmentor, 'align_corners', False)

    @property
    def num_classes(self) -> Optional[int]:
        return getattr(self.segmentor, 'num_classes', None)

    @property
    def out_channels(self) -> Optional[int]:
        return getattr(self.segmentor, 'out_channels', None)

    @property
    def decode_head(self):
        return getattr(self.segmentor, 'decode_head', None)

    # Everything but predict is the wrapped model's.
    def extract_feat(self, inputs: Tensor):
        return self.segmentor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.segmentor.encode_decode(inputs, batch_img_metas)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        return self.segmentor.loss(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        return self.segmentor._forward(inputs, data_samples)

    def aug_test(self, inputs, batch_img_metas, rescale: bool = True):
        return self.segmentor.aug_test(inputs, batch_img_metas, rescale)

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Wrapped model's prediction, then ``pred_sem_seg`` from the dense CRF.

        Args:
            inputs (Tensor): Preprocessed batch (B, 3, H, W).
            data_samples (list[SegDataSample], optional): Samples with metainfo.

        Returns:
            list[SegDataSample]: With the network's ``seg_logits`` and the CRF's
            ``pred_sem_seg`` (1, H, W) at the original image size.
        """
        results = self.segmentor.predict(inputs, data_samples)
        probs, imgs = [], []
        for i, result in enumerate(results):
            logits = result.seg_logits.data
            probs.append(self.logits_to_probs(logits.detach()).float().cpu().numpy())
            imgs.append(self.original_image(inputs[i], result.metainfo, tuple(logits.shape[1:])))
        marginals = self.crf.batch(probs, imgs)
        for result, q in zip(results, marginals):
            device = result.seg_logits.data.device
            pred = torch.from_numpy(q).to(device).argmax(dim=0, keepdim=True)
            result.set_data({'pred_sem_seg': PixelData(data=pred)})
        return results

    @staticmethod
    def logits_to_probs(seg_logits: Tensor) -> Tensor:
        """A sample's ``seg_logits`` (C, H, W) -> class probabilities (C', H, W).

        C > 1: softmax over the classes. C == 1 (binary model, ``out_channels=1``): mmseg
        already stores the sigmoid probability p there; returns ``[1 - p, p]``, so the CRF's
        argmax replaces the head's ``threshold``.
        """
        if seg_logits.shape[0] == 1:
            return torch.cat([1 - seg_logits, seg_logits], dim=0)
        return seg_logits.softmax(dim=0)

    def original_image(self, img: Tensor, metainfo: dict, out_hw: Tuple[int, int]) -> np.ndarray:
        """The un-normalised image behind one sample, (H, W, 3) uint8 RGB at ``out_hw``.

        Args:
            img (Tensor): This sample's model input (3, Hp, Wp), normalised and maybe padded.
            metainfo (dict): The sample's metainfo (``padding_size``, ``flip``,
                ``flip_direction``, ``img_path``...); may be empty.
            out_hw (tuple[int, int]): Size of the probabilities (the original image size).

        Returns:
            np.ndarray: (H, W, 3) uint8, RGB.
        """
        if self.image_source == 'img_path':
            return self._read_image(metainfo, out_hw)
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f'CRFRefineSegmentor: the dense CRF needs 3-channel images, the '
                             f'model input is {tuple(img.shape)}')
        x = unpad(unnormalize(img.detach().float(), self.data_preprocessor), metainfo)
        if metainfo.get('flip', False):
            direction = metainfo.get('flip_direction', 'horizontal')
            x = x.flip(dims=(2, ) if direction == 'horizontal' else (1, ))
        if tuple(x.shape[1:]) != tuple(out_hw):
            x = F.interpolate(x[None], size=out_hw, mode='bilinear', align_corners=False)[0]
        x = to_rgb(x, self.data_preprocessor)
        x = x.round().clamp(0, 255).to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()

    @staticmethod
    def _read_image(metainfo: dict, out_hw: Tuple[int, int]) -> np.ndarray:
        path = metainfo.get('img_path')
        if path is None:
            raise ValueError("CRFRefineSegmentor: image_source='img_path' but the sample has no "
                             "img_path (in-memory input?); use image_source='inputs'")
        # the loaders' pixel limit and EXIF policy (mmaffseg.utils.image_io): the image the
        # model saw
        img = read_image(path, channel_order='rgb')
        if img.shape[:2] != tuple(out_hw):
            raise ValueError(f'CRFRefineSegmentor: image {path} is {img.shape[:2]} but the '
                             f'prediction is {tuple(out_hw)} (ori_shape); use '
                             "image_source='inputs'")
        return img


def _merge_data_preprocessor(segmentor: ConfigDict, data_preprocessor: OptConfigType) -> None:
    """Give ``segmentor`` its preprocessor from its own and the wrapper's ``data_preprocessor``.

    The wrapper's (``model.data_preprocessor``, or the config's top-level
    ``data_preprocessor``, which mmengine's ``Runner`` gives a model dict without one) fills in
    what the wrapped segmentor's own lacks: all of it when the segmentor has none, the other
    keys when the own one is partial (no ``type``, e.g.
    ``segmentor=dict(_base_.model, data_preprocessor=dict(size=crop_size))``). It may set fewer
    keys than the own one (the top-level one of mmseg's model bases has no ``size``), but
    every key it sets must have the own one's value (for a complete own one: be set there):
    a different one is what an mmseg user customises (a top-level ``data_preprocessor`` as
    mmseg's configs write it, ``--cfg-options model.data_preprocessor.size=...``) and would not
    be used, so it is an error. So is a top-level one left at an mmseg base's values while
    ``model.segmentor.data_preprocessor`` was changed: which of the two is meant cannot be
    told here, the message says to make them agree.

    Raises:
        ConfigCheckError: The two differ (message naming both, the keys and the fix), or the
            merged preprocessor has no ``type``.
    """
    own = segmentor.get('data_preprocessor')
    if data_preprocessor is None or (own is not None and own is data_preprocessor):
        merged = own
    elif own is None:
        merged = data_preprocessor
    elif not isinstance(own, dict) or not isinstance(data_preprocessor, dict):
        raise ConfigCheckError(
            'CRFRefineSegmentor: a data_preprocessor given both to the wrapper and in '
            'model.segmentor.data_preprocessor, one of them already built; give it once, in '
            'model.segmentor.data_preprocessor')
    else:
        own_settings, given = _settings(own), _settings(data_preprocessor)
        partial = 'type' not in own_settings
        differing = [k for k, v in given.items()
                     if (k in own_settings and own_settings[k] != v) or
                     (k not in own_settings and not partial)]
        if differing:
            raise ConfigCheckError(_conflict_message(own_settings, given, differing))
        merged = ConfigDict(data_preprocessor, **own) if partial else own
    if isinstance(merged, dict) and 'type' not in merged:
        raise ConfigCheckError(
            f"CRFRefineSegmentor: the wrapped segmentor's data_preprocessor {_settings(merged)} "
            "(model.segmentor.data_preprocessor, completed by the wrapper's) has no type "
            "(mmseg's is SegDataPreProcessor); give a whole preprocessor in "
            'model.segmentor.data_preprocessor, e.g. '
            'dict(_base_.model.data_preprocessor, size=crop_size)')
    if merged is not None:
        segmentor['data_preprocessor'] = merged


def _conflict_message(own: dict, given: dict, keys: List[str]) -> str:
    """One line naming the wrapper's and the wrapped segmentor's differing settings and the
    fix."""
    theirs = ', '.join(f'{k}={given[k]}' for k in keys)
    ours = ', '.join(f'{k}={own[k]}' if k in own else f'{k} unset' for k in keys)
    return (
        f"CRFRefineSegmentor: the wrapper's data_preprocessor sets {theirs} where the wrapped "
        f"segmentor's model.segmentor.data_preprocessor has {ours}; set the preprocessing in "
        'model.segmentor.data_preprocessor and give the wrapper the same or none (it gets '
        "model.data_preprocessor, else the config's top-level data_preprocessor, which "
        "mmengine's Runner passes to a model dict without one), e.g. --cfg-options "
        f'model.segmentor.data_preprocessor.{keys[0]}=... data_preprocessor.{keys[0]}=... '
        '(or data_preprocessor=None)')


def _settings(cfg) -> dict:
    """A preprocessor config as a plain dict, without mmengine's ``_scope_`` tag."""
    if isinstance(cfg, ConfigDict):
        cfg = cfg.to_dict()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k != '_scope_'}


def _drop_segmentor_prefix(module, state_dict, prefix, local_metadata):
    """Save the wrapped segmentor's keys without the ``segmentor.`` level."""
    inner = prefix + _SEGMENTOR_PREFIX
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _add_segmentor_prefix(module, state_dict, prefix, local_metadata, strict, missing_keys,
                          unexpected_keys, error_msgs):
    """Load plain segmentor keys (``backbone.*``) into ``segmentor.backbone.*``."""
    inner = prefix + _SEGMENTOR_PREFIX
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
