# Example: strip pooling modules dropped into mmseg's unchanged DeepLabV3+ R-50-D8 config with
# mmcv ResNet plugins - an SPM after conv2 of every bottleneck of stage 4. mmcv plugins choose
# whole stages; for the official placement (also the last block of stages 1-3) use
# backbone=dict(type='ResNetSP') instead.
_base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='SPM', norm_cfg=dict(type='SyncBN', requires_grad=True)),
            position='after_conv2',
            stages=(False, False, False, True))
    ]))
