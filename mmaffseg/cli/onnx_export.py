# Copyright (c) mmaffseg contributors. All rights reserved.
"""ONNX export of mmaffseg segmentors and its check in ONNX Runtime.

What the graph computes: the segmentor's inference logits for a whole image, exactly what
``model.inference(inputs, metas)`` (and so ``model.predict``'s ``seg_logits``) gives for a
preprocessed batch whose metainfo says the input is the whole, unresized, unpadded image
(``ori_shape = img_shape = pad_shape = (H, W)``):

- input ``input``: the preprocessed batch ``(B, 3, H, W)``, i.e. after the model's
  ``SegDataPreProcessor`` (BGR->RGB swap and ``(img - mean) / std``), as mmdeploy exports;
- output ``seg_logits``: ``(B, C, H, W)`` at the input size (mmseg's ``resize`` of the decode
  head's output, ``align_corners`` as in the head), or ``embedding`` ``(B, D, H, W)`` for
  :class:`~mmaffseg.models.segmentors.FeatureEmbeddingSegmentor`.

Per family:

- HANet (``HANetEncoderDecoder`` with ``HANetNeck`` or ``HANetASPPHead``): the absolute row
  positions are those of a whole image, ``floor(128 * y / H)``, computed inside the graph from
  the runtime height, so a dynamic graph stays exact at every size.
- SPNet, DeepLab v1 / v2, semantic features, DSRL (its inference path only: downsample ->
  encoder-decoder -> SSSR upsampling; the SISR decoder and the feature transform are training
  branches and are not in the graph).
- DeepLab with CRF (``CRFRefineSegmentor``): the graph is the wrapped network; the dense CRF is
  a post-processing step on the probabilities and the image (``pydensecrf``, iterative mean
  field on CPU) and stays outside the graph: run it on ``softmax(seg_logits)``.
- CPNet (``CPHead``): the prior map has one column per cell of a fixed ``prior_size`` grid.
  With ``size_mode='strict'`` (official) the input size is the test crop, ``prior_size *
  output_stride``: export with that ``--shape``. Dynamic height/width is refused (also with
  ``size_mode='resize'``, whose graph is traced at one size).
- Instance embedding (seed selection and mask growing: data-dependent loops over a variable
  number of instances) and PSA (CAM / AffinityNet: random walk and class-level post-processing)
  produce no fixed tensor output and are refused with a clear error.

Dynamic height/width uses the TorchScript exporter's ``dynamic_axes`` (the exporter mmdeploy
uses). Adaptive pooling of HANet and SPNet is written as explicit bins
(:mod:`mmaffseg.models.layers.adaptive_pooling`) so that it follows the runtime size.
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from ..models.decode_heads.cp_head import CPHead
from ..models.segmentors.affinity_net import AffinityNet
from ..models.segmentors.cam_classifier import CAMClassifier
from ..models.segmentors.crf_refine import CRFRefineSegmentor
from ..models.segmentors.feature_embedding import FeatureEmbeddingSegmentor
from ..models.segmentors.hanet_encoder_decoder import HANetEncoderDecoder
from ..models.segmentors.instance_embedding import InstanceEmbeddingSegmentor
from ..ops.row_positions import NUM_ROW_BINS


class ExportError(ValueError):
    """The model (or the requested export) cannot be expressed as an ONNX graph."""


def whole_image_metas(batch: int, height, width, row_positions: Optional[Tensor] = None
                      ) -> List[dict]:
    """Metainfo of a batch of whole, unresized, unpadded images of size ``(height, width)``."""
    metas = []
    for i in range(batch):
        meta = dict(ori_shape=(height, width), img_shape=(height, width),
                    pad_shape=(height, width), padding_size=[0, 0, 0, 0])
        if row_positions is not None:
            meta['row_positions'] = row_positions[i]
        metas.append(meta)
    return metas


def exported_network(model: nn.Module) -> EncoderDecoder:
    """The part of ``model`` that goes into the graph (the CRF wrapper's network).

    Raises:
        ExportError: For segmentors whose prediction is not a fixed tensor.
    """
    if isinstance(model, CRFRefineSegmentor):
        model = model.segmentor  # the dense CRF is post-processing outside the graph
    if isinstance(model, InstanceEmbeddingSegmentor):
        raise ExportError(
            'InstanceEmbeddingSegmentor predicts a variable number of instances (seed '
            'selection and mask growing are data-dependent loops), which is no fixed ONNX '
            'output; export is supported for the semantic segmentation families only')
    if isinstance(model, (CAMClassifier, AffinityNet)):
        raise ExportError(
            f'{type(model).__name__} (PSA) is a pseudo-label stage (CAMs / random walk), not '
            'a deployable segmentor; export the DeepLab trained on its pseudo labels instead')
    if not isinstance(model, EncoderDecoder):
        raise ExportError(f'ONNX export supports EncoderDecoder segmentors, got '
                          f'{type(model).__name__}')
    return model


def fixed_input_size(model: EncoderDecoder) -> Optional[Tuple[int, int]]:
    """The only input size the network accepts, or ``None`` when any size works.

    CPNet's strict context prior needs a feature map of exactly ``prior_size``, i.e. inputs of
    the test crop (``test_cfg.crop_size``).
    """
    head = model.decode_head  # auxiliary heads take no part in inference
    if isinstance(head, CPHead) and head.size_mode == 'strict':
        crop = (model.test_cfg or {}).get('crop_size')
        return tuple(crop) if crop is not None else ()
    return None


class ONNXExportWrapper(nn.Module):
    """``forward(inputs) -> logits`` of a segmentor's whole-image inference, for export.

    Args:
        model (nn.Module): A built mmaffseg / mmseg segmentor (eval mode is set here).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = exported_network(model).eval()

    def row_positions(self, inputs: Tensor) -> Optional[Tensor]:
        """Whole-image row bins ``floor(128 * y / H)``, ``(B, H)``, from the runtime height."""
        parts = (self.model.decode_head, getattr(self.model, 'neck', None))
        if not (isinstance(self.model, HANetEncoderDecoder)
                or any(getattr(part, 'uses_row_positions', False) for part in parts)):
            return None
        column = inputs[:, 0, :, 0]  # (B, H)
        rows = torch.ones_like(column, dtype=torch.long).cumsum(1) - 1
        return torch.div(rows * NUM_ROW_BINS, rows[:, -1:] + 1, rounding_mode='floor')

    def forward(self, inputs: Tensor) -> Tensor:
        height, width = inputs.shape[2], inputs.shape[3]
        metas = whole_image_metas(inputs.shape[0], height, width, self.row_positions(inputs))
        return self.model.encode_decode(inputs, metas)


def reference_logits(model: nn.Module, inputs: Tensor) -> Tensor:
    """PyTorch's inference logits for whole images, through the segmentor's own ``inference``
    (whole or slide as its ``test_cfg`` says, HANet positions from the metainfo)."""
    network = exported_network(model).eval()
    metas = whole_image_metas(inputs.shape[0], *inputs.shape[2:])
    with torch.no_grad():
        return network.inference(inputs, metas)


def output_name(model: nn.Module) -> str:
    net = exported_network(model)
    return 'embedding' if isinstance(net, FeatureEmbeddingSegmentor) else 'seg_logits'


def check_export_shape(model: nn.Module, shape: Sequence[int], dynamic: bool) -> None:
    """Raise :class:`ExportError` if the network cannot take ``shape`` (or dynamic sizes)."""
    network = exported_network(model)
    fixed = fixed_input_size(network)
    if dynamic and isinstance(network.decode_head, CPHead):
        prior = network.decode_head.prior_size
        if fixed is not None:
            raise ExportError(
                "CPNet's context prior (CPHead size_mode='strict') has one column per cell of "
                f'its {prior} prior grid, so the input size is fixed (test crop '
                f'{fixed or "unset"}): export without --dynamic, with --shape equal to the '
                'test crop')
        raise ExportError(
            "CPNet's context prior has one column per cell of its fixed "
            f'{prior} prior grid; with size_mode=\'resize\' any input size works but the '
            'graph is traced at one: export without --dynamic at the --shape you deploy')
    if fixed and tuple(shape) != fixed:
        raise ExportError(
            f'CPNet takes inputs of exactly its test crop {fixed} (prior_size x output '
            f'stride), got --shape {tuple(shape)}: use --shape {fixed[0]} {fixed[1]}')
    cfg = network.test_cfg or {}
    if cfg.get('mode') == 'slide' and fixed is None:
        crop = tuple(cfg['crop_size'])
        if dynamic or any(s > c for s, c in zip(shape, crop)):
            raise ExportError(
                f"the model's test_cfg uses sliding-window inference (crop {crop}), whose "
                'window loop depends on the image size; the graph holds one window: export '
                "at most the crop size without --dynamic, or set test_cfg mode='whole' "
                "(--cfg-options model.test_cfg.mode=whole) to export whole-image inference")


def export_onnx(model: nn.Module,
                shape: Sequence[int],
                out_file: str,
                dynamic: bool = False,
                batch: int = 1,
                opset_version: int = 17) -> str:
    """Export ``model``'s whole-image inference logits to ``out_file`` (TorchScript exporter).

    Args:
        model (nn.Module): A built segmentor.
        shape (Sequence[int]): Input ``(H, W)`` used for tracing (and the fixed size unless
            ``dynamic``).
        out_file (str): Path of the ``.onnx`` file.
        dynamic (bool): Dynamic height and width. Default: False.
        batch (int): Batch size (fixed in the graph: the per-image metainfo is unrolled
            when tracing). Default: 1.
        opset_version (int): ONNX opset. Default: 17.

    Returns:
        str: ``out_file``.
    """
    check_export_shape(model, shape, dynamic)
    wrapper = ONNXExportWrapper(model)
    dummy = torch.zeros(batch, 3, *shape)
    name = output_name(model)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {2: 'height', 3: 'width'}, name: {2: 'height', 3: 'width'}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(wrapper, (dummy, ), out_file, input_names=['input'],
                          output_names=[name], dynamic_axes=dynamic_axes,
                          opset_version=opset_version, do_constant_folding=True,
                          dynamo=False)
    if dynamic:
        _declare_static_output_dims(out_file, _output_shape(wrapper, dummy), dynamic_axes[name])
    return out_file


def _output_shape(wrapper: nn.Module, inputs: Tensor) -> Tuple[int, ...]:
    """Shape of the graph's output for ``inputs`` (an eval-mode forward, mode restored)."""
    training = wrapper.training
    wrapper.eval()
    try:
        with torch.no_grad():
            return tuple(wrapper(inputs).shape)
    finally:
        wrapper.train(training)


def _declare_static_output_dims(onnx_file: str, shape: Sequence[int],
                                dynamic: Dict[int, str]) -> None:
    """Write the traced size of every output dimension that is not dynamic into the graph.

    With ``dynamic_axes`` the TorchScript exporter's shape inference loses the batch and
    channel sizes behind the final resize and declares them with generated names
    (``Resizeseg_logits_dim_0``); they are fixed in the graph (the batch is unrolled when
    tracing), so they are declared as the numbers they are.
    """
    import onnx
    graph = onnx.load(onnx_file)
    (output, ) = graph.graph.output
    for axis, dim in enumerate(output.type.tensor_type.shape.dim):
        if axis not in dynamic:
            dim.dim_value = int(shape[axis])
    onnx.save(graph, onnx_file)


def verify_onnx(model: nn.Module, onnx_file: str, inputs: Tensor,
                num_threads: Optional[int] = None) -> Dict[str, float]:
    """Run ``onnx_file`` in ONNX Runtime and compare with PyTorch's inference logits.

    Args:
        model (nn.Module): The exported segmentor.
        onnx_file (str): The exported graph.
        inputs (Tensor): A preprocessed batch ``(B, 3, H, W)``.
        num_threads (int, optional): ONNX Runtime intra-op threads.

    Returns:
        dict: ``max_abs_diff``, ``max_abs_ref`` (scale of the logits) and
        ``argmax_agreement`` (fraction of pixels with the same arg-max class; 1.0 for an
        embedding, where the arg-max means nothing, it is computed all the same).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    expected = reference_logits(model, inputs).numpy()
    if got.shape != expected.shape:
        raise ExportError(f'ONNX output shape {got.shape} differs from PyTorch '
                          f'{expected.shape} for input {tuple(inputs.shape)}')
    return dict(max_abs_diff=float(np.abs(got - expected).max()),
                max_abs_ref=float(np.abs(expected).max()),
                argmax_agreement=float((got.argmax(1) == expected.argmax(1)).mean()))


__all__ = [
    'ExportError', 'ONNXExportWrapper', 'check_export_shape', 'export_onnx',
    'exported_network', 'reference_logits', 'verify_onnx', 'whole_image_metas'
]
