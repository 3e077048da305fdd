# Copyright (c) mmaffseg contributors. All rights reserved.
"""One quick-start config per model family, for the tests that run every family (mixed
precision, device placement, GPU training). The CRF variants train the same networks, the
pseudo-label config trains nothing and the PSA second stage is DeepLab v2."""
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAMILIES = {
    'deeplabv3plus': 'quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
    'hanet': 'hanet/hanet_r18-d16_quickstart_synthetic-128x256.py',
    'spnet': 'spnet/spnet_r50-d8-slim_quickstart_synthetic-128x256.py',
    'cpnet': 'cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py',
    'deeplabv1': 'deeplabv1/deeplabv1_vgg16-slim-largefov_quickstart_synthetic-128x256.py',
    'deeplabv2': 'deeplabv2/deeplabv2_r18-d8_quickstart_synthetic-128x256.py',
    'dsrl': 'dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
    'semantic_features': 'semantic_features/semantic-features_r18_quickstart_synthetic-128x256.py',
    'instance_embedding':
    'instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py',
    'psa_cam': 'psa/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py',
    'psa_affinitynet': 'psa/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py',
}


def family_config(family: str) -> str:
    """Absolute path of the family's quick-start config."""
    return osp.join(REPO, 'configs', FAMILIES[family])
