# Benchmark: DSRL without its SISR decoder and feature-affinity loss, i.e. the protocol's
# DeepLabV3+ at DSRL's operating point with bilinear SSSR: the network sees the 512x1024 crop
# downsampled x0.5 (256x512) and its logits are upsampled (bilinear) to 512x1024, where the
# loss and the evaluation compare them with the full-size labels. ./dsrl.py is this config
# plus the two training branches, so dsrl - deeplabv3plus-half-sssr is what SISR + FA add on
# the same network, input and labels, and deeplabv3plus - deeplabv3plus-half-sssr what halving
# the input costs. Not the paper's ablation baseline (the same network on the halved image
# trained against labels halved with it, no SSSR): that one is
# configs/dsrl/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-half-512x1024.py, outside the suite
# (labels at another resolution than every method's). Method part: model.type,
# model.downsample_factor (DSRLEncoderDecoder without sr_decoder: no SISR / FA branches).
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py']
model = dict(**_base_.bench_model, type='DSRLEncoderDecoder', downsample_factor=0.5)
