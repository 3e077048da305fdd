# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_net import AffinityNet
from .cam_classifier import CAMClassifier
from .crf_refine import CRFRefineSegmentor
from .dsrl import DSRLEncoderDecoder
from .feature_embedding import FeatureEmbeddingSegmentor
from .hanet_encoder_decoder import HANetEncoderDecoder
from .instance_embedding import InstanceEmbeddingSegmentor

__all__ = [
    'AffinityNet',
    'CAMClassifier',
    'CRFRefineSegmentor',
    'DSRLEncoderDecoder',
    'FeatureEmbeddingSegmentor',
    'HANetEncoderDecoder',
    'InstanceEmbeddingSegmentor',
]
