# Benchmark: DeepLab v2 (Chen et al., TPAMI 2018): ASPP of four summed atrous classifiers (rates
# 6/12/18/24), from ../_base_/models/deeplabv2_r50-d8.py. Method part: model.decode_head. The
# protocol adds mmseg's auxiliary FCN head (training only), which DeepLab v2 did not have.
_base_ = ['./_base_/protocol.py', '../_base_/models/deeplabv2_r50-d8.py']
model = dict(**_base_.bench_model)
