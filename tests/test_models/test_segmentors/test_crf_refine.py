# Copyright (c) mmaffseg contributors. All rights reserved.
"""CRFRefineSegmentor: equals DenseCRF on the wrapped model's probabilities, recovers the
original image, cleans a noisy toy prediction, shares checkpoints with the plain model."""
import copy

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_state_dict
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmaffseg.models.segmentors import CRFRefineSegmentor
from mmaffseg.postprocessing import DenseCRF
from mmaffseg.utils import ConfigCheckError

try:
    import pydensecrf.densecrf  # noqa: F401
    HAS_CRF = True
except ImportError:
    HAS_CRF = False
needs_crf = pytest.mark.skipif(not HAS_CRF, reason='pydensecrf is not installed')

init_default_scope('mmseg')  # nested data_preprocessor configs are built from mmseg's scope
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
CRF = dict(iterations=5, bilateral_sxy=20, bilateral_srgb=10, bilateral_compat=5)


def _segmentor_cfg(size_divisor=16):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255,
                               test_cfg=dict(size_divisor=size_divisor)),
        backbone=dict(type='VGGAtrous', base_channels=4),
        decode_head=dict(type='LargeFOVHead', in_channels=32, channels=16, dilation=2,
                         num_classes=3, dropout_ratio=0.0),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def _rgb_image(h, w, seed=0):
    """A smooth image with two regions, RGB uint8."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(20, 200, w)[None].astype(np.uint8)
    img[:, w // 2:, 1] = 180
    img[..., 2] = rng.integers(0, 30, (h, w))
    return img


def _batch(rgb_images, extra_meta=None):
    """What mmseg's loader gives the model: BGR uint8 (3, H, W) tensors + metainfo."""
    inputs, samples = [], []
    for img in rgb_images:
        h, w = img.shape[:2]
        inputs.append(torch.from_numpy(np.ascontiguousarray(img[..., ::-1])).permute(2, 0, 1))
        meta = dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w))
        meta.update(extra_meta or {})
        samples.append(SegDataSample(metainfo=meta))
    return dict(inputs=inputs, data_samples=samples)


@needs_crf
def test_predict_equals_densecrf_on_wrapped_probabilities():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg(), crf=CRF))
    model.eval()
    rgb = _rgb_image(27, 37)  # padded to 32x48 by the preprocessor
    data = model.data_preprocessor(_batch([rgb]), False)
    assert [int(v) for v in data['data_samples'][0].img_padding_size] == [0, 11, 0, 5]
    with torch.no_grad():
        plain = model.segmentor.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        (result, ) = model.predict(data['inputs'], data['data_samples'])
    logits = plain[0].seg_logits.data
    q = DenseCRF(**CRF)(logits.softmax(0).numpy(), rgb)
    torch.testing.assert_close(result.seg_logits.data, logits)  # network logits kept
    assert result.pred_sem_seg.data.shape == (1, 27, 37)
    assert torch.equal(result.pred_sem_seg.data, torch.from_numpy(q).argmax(0, keepdim=True))


def test_original_image_undoes_normalisation_padding_and_flip():
    model = MODELS.build(dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg()))
    rgb = _rgb_image(27, 37)
    data = model.data_preprocessor(_batch([rgb]), False)
    meta = data['data_samples'][0].metainfo
    np.testing.assert_array_equal(model.original_image(data['inputs'][0], meta, (27, 37)), rgb)
    flipped = model.data_preprocessor(
        _batch([rgb[:, ::-1]], dict(flip=True, flip_direction='horizontal')), False)
    np.testing.assert_array_equal(
        model.original_image(flipped['inputs'][0], flipped['data_samples'][0].metainfo,
                             (27, 37)), rgb)
    # a test pipeline that resized the image: bilinear back to ori_shape, close to the original
    small = mmcv.imresize(rgb, (19, 14), interpolation='bilinear')
    resized = model.data_preprocessor(_batch([small]), False)
    back = model.original_image(resized['inputs'][0], resized['data_samples'][0].metainfo,
                                (27, 37))
    assert back.shape == (27, 37, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb).mean() < 12


def test_original_image_from_img_path(tmp_path):
    rgb = _rgb_image(20, 30)
    path = str(tmp_path / 'img.png')
    mmcv.imwrite(rgb[..., ::-1], path)  # files are stored BGR by OpenCV
    model = MODELS.build(
        dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg(), image_source='img_path'))
    np.testing.assert_array_equal(model.original_image(None, dict(img_path=path), (20, 30)), rgb)
    with pytest.raises(ValueError, match='has no img_path'):
        model.original_image(None, {}, (20, 30))
    with pytest.raises(ValueError, match=r"is \(20, 30\) but the prediction is \(10, 30\)"):
        model.original_image(None, dict(img_path=path), (10, 30))


@MODELS.register_module(force=True)
class ToyNoisyTwoRegionSegmentor(BaseSegmentor):
    """Test stand-in: P(class 1) = 0.3 + 0.4 * [pixel is bright] + fixed Gaussian noise."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.align_corners = False

    def predict(self, inputs, data_samples=None):
        bright = (inputs.mean(1, keepdim=True) > 0).float()
        noise = torch.randn(bright.shape, generator=torch.Generator().manual_seed(0)) * 0.3
        p1 = (0.3 + 0.4 * bright + noise).clamp(0.01, 0.99)
        return self.postprocess_result(torch.cat([1 - p1, p1], 1).log(), data_samples)

    def extract_feat(self, inputs):
        raise NotImplementedError

    def encode_decode(self, inputs, batch_img_metas):
        raise NotImplementedError

    def loss(self, inputs, data_samples):
        raise NotImplementedError

    def _forward(self, inputs, data_samples=None):
        raise NotImplementedError

    def aug_test(self, inputs, batch_img_metas):
        raise NotImplementedError


@needs_crf
def test_crf_cleans_noisy_prediction_on_two_region_image():
    h, w = 32, 48
    rgb = np.full((h, w, 3), 30, np.uint8)
    rgb[:, w // 2:] = 220
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2:] = 1
    model = MODELS.build(
        dict(type='CRFRefineSegmentor',
             segmentor=dict(type='ToyNoisyTwoRegionSegmentor',
                            data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN,
                                                   std=STD, bgr_to_rgb=True))))
    (result, ) = model.test_step(_batch([rgb]))
    noisy = result.seg_logits.data.argmax(0).numpy()
    refined = result.pred_sem_seg.data[0].numpy()
    assert (noisy != truth).mean() > 0.1
    assert (refined != truth).mean() < (noisy != truth).mean() / 5


def test_checkpoints_are_the_plain_segmentors():
    torch.manual_seed(0)
    plain = MODELS.build(_segmentor_cfg())
    wrapped = MODELS.build(dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg()))
    assert set(wrapped.state_dict()) == set(plain.state_dict())
    wrapped.load_state_dict(plain.state_dict(), strict=True)
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(wrapped.segmentor.state_dict()[k], v)
    other = MODELS.build(_segmentor_cfg())
    other.load_state_dict(wrapped.state_dict(), strict=True)
    # mmengine's own loader (used by load_from / --resume / tools/test.py) too
    fresh = MODELS.build(dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg()))
    load_state_dict(fresh, plain.state_dict(), strict=True)
    torch.testing.assert_close(fresh.segmentor.decode_head.conv_seg.weight,
                               plain.decode_head.conv_seg.weight)


def test_training_and_tensor_mode_are_the_wrapped_models():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg()))
    assert model.data_preprocessor is model.segmentor.data_preprocessor
    assert model.num_classes == 3 and model.align_corners is False
    x = torch.randn(1, 3, 24, 32)
    torch.testing.assert_close(model(x, mode='tensor'), model.segmentor(x, mode='tensor'))


def _built_with(segmentor, data_preprocessor):
    """The wrapper built with ``data_preprocessor`` given to it (mmengine's Runner gives it the
    config's top-level one when the wrapper's dict has none)."""
    return MODELS.build(dict(type='CRFRefineSegmentor', segmentor=segmentor,
                             data_preprocessor=data_preprocessor))


def test_a_wrapper_preprocessor_that_differs_from_the_wrapped_one_is_an_error():
    """mmseg's way of customising the preprocessing (a top-level ``data_preprocessor``, or
    ``--cfg-options model.data_preprocessor.size=...``) reaches the wrapper, which preprocesses
    with the wrapped segmentor's: it was dropped with a warning, now it stops the build naming
    both settings, the keys and where to set them."""
    own = _segmentor_cfg()
    own['data_preprocessor']['size'] = (24, 32)
    top = dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=STD, bgr_to_rgb=True,
               size=(512, 1024))
    with pytest.raises(ConfigCheckError) as error:
        _built_with(own, top)
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith("CRFRefineSegmentor: the wrapper's data_preprocessor sets "
                              f'mean=[0, 0, 0], size=[512, 1024] where the wrapped '
                              "segmentor's model.segmentor.data_preprocessor has "
                              f'mean={MEAN}, size=[24, 32]; set the preprocessing in '
                              'model.segmentor.data_preprocessor'), message
    assert ('--cfg-options model.segmentor.data_preprocessor.mean=... '
            'data_preprocessor.mean=... (or data_preprocessor=None)') in message
    # a key the wrapped (complete) preprocessor leaves at its default
    with pytest.raises(ConfigCheckError, match=r'sets pad_val=7 where .* has pad_val unset'):
        _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(type='SegDataPreProcessor')),
                    dict(type='SegDataPreProcessor', pad_val=7))
    # explicitly given to the wrapper, partial (--cfg-options model.data_preprocessor.size=...)
    with pytest.raises(ConfigCheckError, match=r'sets size=\[64, 64\] where .* has size unset'):
        _built_with(_segmentor_cfg(), dict(size=(64, 64)))


def test_wrapper_preprocessor_fills_in_a_missing_or_partial_one_and_equal_ones_pass():
    own = _segmentor_cfg()
    given = own.pop('data_preprocessor')
    model = _built_with(own, dict(given, size=(24, 32)))
    assert tuple(model.segmentor.data_preprocessor.size) == (24, 32)
    assert model.data_preprocessor is model.segmentor.data_preprocessor
    # the top-level one of mmseg's model bases: the same settings, less the size the model adds
    model = _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(given, size=(24, 32))),
                        dict(given, _scope_='mmseg'))
    assert tuple(model.data_preprocessor.size) == (24, 32)
    # equal, as in mmseg's configs (model.data_preprocessor=data_preprocessor): the snippet
    model = _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(given, size=(24, 32))),
                        dict(given, size=[24, 32]))
    assert tuple(model.data_preprocessor.size) == (24, 32)
    # partial own (segmentor=dict(_base_.model, data_preprocessor=dict(size=crop_size))): it
    # was kept alone and the build died with mmengine's raw KeyError about "type"
    model = _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(size=(24, 32))),
                        dict(given, size=(24, 32), mean=[1, 2, 3]))
    preprocessor = model.segmentor.data_preprocessor
    assert tuple(preprocessor.size) == (24, 32) and model.data_preprocessor is preprocessor
    torch.testing.assert_close(preprocessor.mean.flatten().float(), torch.tensor([1., 2., 3.]))
    torch.testing.assert_close(preprocessor.std.flatten(), torch.tensor(STD))
    x = torch.zeros(3, 20, 30, dtype=torch.uint8)
    batch = preprocessor(dict(inputs=[x], data_samples=[SegDataSample()]), True)
    assert tuple(batch['inputs'].shape[-2:]) == (24, 32)
    with pytest.raises(ConfigCheckError,
                       match=r'sets size=\[32, 32\] where .* has size=\[24, 32\]'):
        _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(size=(24, 32))),
                    dict(given, size=(32, 32)))


def test_a_preprocessor_without_type_is_named():
    """mmengine's raw KeyError ('`cfg` or `default_args` must contain the key "type"')."""
    for top in (None, dict(mean=[0, 0, 0])):
        with pytest.raises(ConfigCheckError) as error:
            _built_with(dict(_segmentor_cfg(), data_preprocessor=dict(size=(24, 32))), top)
        assert str(error.value).startswith(
            "CRFRefineSegmentor: the wrapped segmentor's data_preprocessor ")
        assert 'has no type' in str(error.value)
        assert 'dict(_base_.model.data_preprocessor, size=crop_size)' in str(error.value)


def test_overrides_go_to_the_wrapped_segmentor():
    model = MODELS.build(
        dict(type='CRFRefineSegmentor', segmentor=_segmentor_cfg(), train_cfg=None,
             test_cfg=dict(mode='slide', crop_size=(16, 16), stride=(8, 8))))
    assert model.segmentor.test_cfg['mode'] == 'slide'


def test_logits_to_probs():
    logits = torch.randn(4, 3, 5)
    torch.testing.assert_close(CRFRefineSegmentor.logits_to_probs(logits), logits.softmax(0))
    p = torch.rand(1, 2, 2)  # a one-channel model: mmseg stores sigmoid probabilities
    torch.testing.assert_close(CRFRefineSegmentor.logits_to_probs(p), torch.cat([1 - p, p]))


def test_bad_arguments():
    with pytest.raises(TypeError, match='segmentor must be a model config dict'):
        CRFRefineSegmentor(segmentor='EncoderDecoder')
    with pytest.raises(ValueError, match='image_source must be one of'):
        CRFRefineSegmentor(segmentor=_segmentor_cfg(), image_source='disk')
    with pytest.raises(ValueError, match='iterations must be a positive integer'):
        CRFRefineSegmentor(segmentor=_segmentor_cfg(), crf=dict(iterations=0))
    model = CRFRefineSegmentor(segmentor=_segmentor_cfg())
    with pytest.raises(ValueError, match='needs 3-channel images'):
        model.original_image(torch.zeros(1, 8, 8), {}, (8, 8))
