# A short CPU-friendly schedule for the synthetic quick-start configs.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
max_iters = 300
optimizer = dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=20, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic checkpoint files and last_checkpoint (mmaffseg.engine.AtomicCheckpointHook)
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Paints every 15th validation image (4 of the 60) into <work_dir>/<time>/vis_data.
    visualization=dict(type='SegVisualizationHook', draw=True, interval=15),
    # random generator states in checkpoints: --resume ends on the uninterrupted run's weights
    rng_state=dict(type='RNGStateHook'))
randomness = dict(seed=0)
# mmseg's SegLocalVisualizer, plus instance / embedding pictures and images of any memory layout
# (mmseg's tools/misc/browse_dataset.py; mmaffseg/visualization/local_visualizer.py)
visualizer = dict(type='AffSegLocalVisualizer')
