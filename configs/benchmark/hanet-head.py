# Benchmark: HANet's official DeepLabV3+ head (configs/hanet/hanet_r50-d8_*: plain ASPP, HANet at
# layer4, ASPP concatenation, projection and decoder). Method part: model.type and
# model.decode_head. Differences from the official recipe, to keep the protocol: the protocol's
# backbone (contract_dilation=True instead of the official False) and auxiliary head (256
# channels, align_corners=False instead of 512 / True).
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
          '../_base_/models/hanet_aspp_head.py']
model = dict(
    **_base_.bench_model,
    type='HANetEncoderDecoder',
    decode_head=dict(_delete_=True, **_base_.hanet_aspp_head, norm_cfg=_base_.bench_norm_cfg))
