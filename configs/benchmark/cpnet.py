# Benchmark: CPNet (Yu et al., CVPR 2020): context prior head with the affinity loss, from
# ../_base_/models/cpnet_r50-d8.py. Method part: model.decode_head. The official head needs the
# stride-8 map of its input to equal the prior grid, so it cannot run a whole 1024x2048 image:
# it is evaluated on sliding windows of its 512x1024 training crop (prior_size (64, 128)), the
# protocol's bench_slide_test_cfg, a declared deviation from the protocol's whole-image test.
_base_ = ['./_base_/protocol.py', '../_base_/models/cpnet_r50-d8.py']
model = dict(
    _base_.bench_model, decode_head=dict(prior_size=(64, 128)),
    test_cfg=_base_.bench_slide_test_cfg)
