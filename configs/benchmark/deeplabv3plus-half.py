# Benchmark: DSRL's own baseline, the protocol's DeepLabV3+ at DSRL's operating point: the
# network sees the 512x1024 crop downsampled x0.5 (256x512) and its logits are upsampled
# (bilinear) to 512x1024, where the loss and the evaluation compare them with the full-size
# labels. ./dsrl.py is this config plus the SR decoder and the feature-affinity loss (training
# only), so dsrl - deeplabv3plus-half is DSRL's gain on the same network and input, and
# deeplabv3plus - deeplabv3plus-half what halving the input costs. Method part: model.type,
# model.downsample_factor (DSRLEncoderDecoder without sr_decoder: no SR / FA branches).
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py']
model = dict(**_base_.bench_model, type='DSRLEncoderDecoder', downsample_factor=0.5)
