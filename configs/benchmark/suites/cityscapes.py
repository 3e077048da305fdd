# The Cityscapes benchmark suite of tools/benchmark_suite.py: every method of configs/benchmark
# under the protocol of ../_base_/protocol.py, unchanged.
#   python tools/benchmark_suite.py cityscapes --data-root data/cityscapes --work-dir W ...
# methods: name -> config (relative to this file), in training order.
methods = {
    'deeplabv3plus': '../deeplabv3plus.py',
    'hanet-neck': '../hanet-neck.py',
    'hanet-head': '../hanet-head.py',
    'spnet': '../spnet.py',
    'cpnet': '../cpnet.py',
    'deeplabv3plus-half-sssr': '../deeplabv3plus-half-sssr.py',
    'dsrl': '../dsrl.py',
    'deeplabv2': '../deeplabv2.py',
    'deeplabv2-crf': '../deeplabv2-crf.py',
    'deeplabv3plus-crf': '../deeplabv3plus-crf.py',
}
# test-time-only variants: evaluated on the checkpoint of the named method's run (same seed)
eval_only = {'deeplabv2-crf': 'deeplabv2', 'deeplabv3plus-crf': 'deeplabv3plus'}
# merged into every method's config (nested dicts merge, lists replace); 'model' entries apply
# to the wrapped segmentor of CRFRefineSegmentor configs
options = {}
# merged into one method's config after `options` (a CRF variant gets its base method's)
method_options = {}
# replace SyncBN by BN everywhere in the model (one process / CPU)
replace_sync_bn = False
# --tiny: a few iterations, to check a set-up end to end
tiny_options = dict(
    train_cfg=dict(max_iters=4, val_interval=4),
    param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=4,
                          by_epoch=False)],
    default_hooks=dict(
        logger=dict(interval=1),
        checkpoint=dict(interval=2)))
# --test-mode slide: every method's test_cfg becomes the config's bench_slide_test_cfg
# (../_base_/protocol.py, scaled by a suite's options)
# the images the fps / memory measurement feeds (the suite's evaluation image size)
image_size = (1024, 2048)
