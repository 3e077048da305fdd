# Benchmark baseline: mmseg's DeepLabV3+ (depthwise-separable ASPP head + decoder) under the
# protocol of _base_/protocol.py.
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py']
model = dict(**_base_.bench_model)
