# Benchmark: SPNet (Hou et al., CVPR 2020): strip pooling modules in the backbone (official
# placement) and the SPHead, from ../_base_/models/spnet_r50-d8.py. Method part: model.backbone
# type / spm_cfg / spm_blocks and model.decode_head. Differences from the official recipe, to keep
# the protocol: stage-4 dilations 4 (protocol) instead of the multi-grid 4/8/16, and the
# protocol's auxiliary head (align_corners=False).
_base_ = ['./_base_/protocol.py', '../_base_/models/spnet_r50-d8.py']
model = dict(**_base_.bench_model)
# the protocol's backbone arguments on SPNet's backbone class (ResNetV1c + SPMs)
model['backbone'] = {
    **_base_.model.backbone, **_base_.bench_model.backbone, 'type': _base_.model.backbone.type}
