# Benchmark: CPNet (Yu et al., CVPR 2020): context prior head with the affinity loss, from
# ../_base_/models/cpnet_r50-d8.py. Method part: model.decode_head. The official head needs the
# stride-8 map of a window to equal the prior grid: 512x1024 windows -> prior_size (64, 128).
_base_ = ['./_base_/protocol.py', '../_base_/models/cpnet_r50-d8.py']
model = dict(**_base_.bench_model, decode_head=dict(prior_size=(64, 128)))
