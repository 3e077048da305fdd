# Copyright (c) mmaffseg contributors. All rights reserved.
"""Official constructor arguments -> mmaffseg configs, for the golden parity tests.

The golden fixtures (``tests/data/golden/<method>/*.npz``) record the keyword arguments the
official CPNet, SPNet and HANet code was called with; these functions build the mmaffseg module
that must reproduce it. They serve the tests only, so they live here rather than in
``tools/model_converters/converters/*_converter.py`` (which convert checkpoints).
"""


# from tools/model_converters/converters/cpnet_converter.py
# official CPHead / AffinityLoss arguments that are named differently here
_CP_CTOR_NAMES = {'drop_out_ratio': 'dropout_ratio'}


_LOSS_TYPES = {'AffinityLoss': 'ContextPriorLoss'}


def official_cp_head_cfg(ctor: dict) -> dict:
    """mmaffseg ``CPHead`` config from the official ``CPHead`` keyword arguments.

    The official loss ``AffinityLoss`` becomes :class:`ContextPriorLoss` (official form);
    its only supported ``reduction`` is ``'mean'``.

    Args:
        ctor (dict): Official arguments (``prior_channels``, ``prior_size``, ``in_channels``,
            ``norm_cfg``, ``loss_prior_decode``...).

    Returns:
        dict: A config for ``MODELS.build``.
    """
    cfg = dict(type='CPHead')
    for name, value in ctor.items():
        if name == 'loss_prior_decode':
            value = official_affinity_loss_cfg(value)
        cfg[_CP_CTOR_NAMES.get(name, name)] = value
    return cfg


def official_affinity_loss_cfg(ctor: dict) -> dict:
    """:class:`ContextPriorLoss` config from official ``AffinityLoss`` arguments.

    Args:
        ctor (dict): ``reduction`` (must be ``'mean'``), ``loss_weight`` and optionally
            ``type`` (``'AffinityLoss'``).

    Returns:
        dict: A config for ``MODELS.build``.
    """
    cfg = dict(type='ContextPriorLoss', form='official')
    for name, value in ctor.items():
        if name == 'type':
            if value not in _LOSS_TYPES:
                raise ValueError(f'unknown official loss type {value!r}')
        elif name == 'reduction':
            if value != 'mean':
                raise ValueError(f"ContextPriorLoss only implements reduction='mean' (the "
                                 f'official default), got {value!r}')
        elif name == 'loss_weight':
            cfg['loss_weight'] = value
        else:
            raise KeyError(f'unknown official AffinityLoss argument {name!r}')
    return cfg



# from tools/model_converters/converters/spnet_converter.py
_OUR_TYPES = dict(SPBlock='SPM', StripPooling='MPM', SPHead='SPHead')


_NORMS = {'nn.BatchNorm2d': 'BN', 'BatchNorm2d': 'BN', 'nn.SyncBatchNorm': 'SyncBN',
          'SyncBatchNorm': 'SyncBN'}


def _norm_cfg(norm_layer: str) -> dict:
    if norm_layer not in _NORMS:
        raise ValueError(f'unknown official norm_layer {norm_layer!r}; known: {sorted(_NORMS)}')
    return dict(type=_NORMS[norm_layer])


def _align_corners(up_kwargs: dict) -> bool:
    if up_kwargs.get('mode', 'bilinear') != 'bilinear':
        raise ValueError(f'only bilinear up_kwargs are supported, got {up_kwargs}')
    return bool(up_kwargs.get('align_corners', False))


def official_spnet_module_cfg(source: str, ctor: dict) -> dict:
    """mmaffseg config of an official SPBlock / StripPooling / SPHead constructor call.

    Args:
        source (str): ``'SPBlock'``, ``'StripPooling'`` or ``'SPHead'``.
        ctor (dict): The official keyword arguments (norm layers as strings, e.g.
            ``'nn.BatchNorm2d'``).

    Returns:
        dict: A config for ``MODELS.build``.
    """
    if source not in _OUR_TYPES:
        raise ValueError(f'source must be one of {sorted(_OUR_TYPES)}, got {source!r}')
    cfg = dict(type=_OUR_TYPES[source])
    for name, value in ctor.items():
        if name == 'norm_layer':
            cfg['norm_cfg'] = _norm_cfg(value)
        elif name == 'up_kwargs':
            cfg['align_corners'] = _align_corners(value)
        elif (source, name) == ('SPBlock', 'inplanes') or name == 'in_channels':
            cfg['in_channels'] = value
        elif (source, name) == ('SPBlock', 'outplanes'):
            cfg['out_channels'] = value
        elif (source, name) == ('StripPooling', 'pool_size'):
            cfg['pool_sizes'] = tuple(value)
        elif (source, name) == ('SPHead', 'out_channels'):
            cfg['num_classes'] = value
        else:
            raise KeyError(f'unknown official {source} argument {name!r}')
    if source == 'SPHead':  # the official head narrows to in_channels // 4 before the classifier
        cfg.update(channels=cfg['in_channels'] // 4, dropout_ratio=0.1)
    return cfg


def official_spnet_model_overrides(ctor: dict) -> dict:
    """Overrides turning ``configs/spnet``'s model into the official ``SPNet(**ctor)``.

    Args:
        ctor (dict): The official ``SPNet`` keyword arguments (``nclass``, ``backbone``,
            ``aux``, ``norm_layer``, ``spm_on``, ``pretrained``, ``criterion``).

    Returns:
        dict: To merge into a ``configs/spnet`` model config (mmengine merge semantics).
    """
    backbone = dict(stem_channels=128)  # official deep stem 64-64-128
    heads, aux, aux_on = dict(), dict(), True
    for name, value in ctor.items():
        if name == 'nclass':
            heads['num_classes'] = aux['num_classes'] = value
        elif name == 'backbone':
            depth = {'resnet50': 50, 'resnet101': 101, 'resnet152': 152}.get(value)
            if depth is None:
                raise ValueError(f'unsupported official backbone {value!r}')
            backbone['depth'] = depth
        elif name == 'norm_layer':
            backbone['norm_cfg'] = heads['norm_cfg'] = aux['norm_cfg'] = _norm_cfg(value)
        elif name == 'spm_on':
            if not value:
                backbone['spm_blocks'] = ('none', ) * 4
        elif name == 'aux':
            aux_on = bool(value)
        elif name in ('pretrained', 'criterion'):
            continue  # ImageNet init and training loss: no effect on the network's function
        else:
            raise KeyError(f'unknown official SPNet argument {name!r}')
    return dict(backbone=backbone, decode_head=heads, auxiliary_head=aux if aux_on else None)



# from tools/model_converters/converters/hanet_converter.py
# official HANet_Conv constructor argument -> HANet argument
_HANET_CTOR_NAMES = dict(in_channel='in_channels', out_channel='out_channels', r_factor='reduction',
                   kernel_size='kernel_size', layer='num_convs', pos_injection='pos_injection',
                   pos_rfactor='pos_rfactor', pooling='pooling', dropout_prob='dropout_ratio',
                   pos_noise='pos_noise')


def official_hanet_kwargs(ctor: dict) -> dict:
    """:class:`HANet` keyword arguments for the official ``HANet_Conv`` constructor ones.

    Args:
        ctor (dict): Official arguments (``in_channel``, ``out_channel``, ``r_factor``,
            ``layer``, ``is_encoding``, ``dropout_prob``...).

    Returns:
        dict: The matching HANet arguments.
    """
    kwargs = {}
    for name, value in ctor.items():
        if name == 'is_encoding':
            if value not in (0, 1):
                raise ValueError(f'official is_encoding must be 0 (learned) or 1 (sinusoid), '
                                 f'got {value!r}')
            kwargs['pos_encoding'] = 'sinusoid' if value == 1 else 'learned'
        elif name in _HANET_CTOR_NAMES:
            kwargs[_HANET_CTOR_NAMES[name]] = value
        else:
            raise KeyError(f'unknown official HANet_Conv argument {name!r}; known: '
                           f'{sorted(_HANET_CTOR_NAMES) + ["is_encoding"]}')
    return kwargs


def official_hanet_head_kwargs(args: dict) -> dict:
    """:class:`HANetASPPHead` arguments for the official training options of the HANet model.

    Args:
        args (dict): Official ``train.py`` options: ``hanet`` (five 0/1 flags),
            ``hanet_set`` (kernel_size, r_factor, layer), ``hanet_pos`` (pos_injection,
            is_encoding), ``pos_rfactor``, ``pooling``, ``dropout``, ``pos_noise`` and
            ``aux_loss`` (which concerns the auxiliary head and is ignored here).

    Returns:
        dict: ``hanet_placements`` and ``hanet_cfg``.
    """
    known = {'hanet', 'hanet_set', 'hanet_pos', 'pos_rfactor', 'pooling', 'dropout',
             'pos_noise', 'aux_loss'}
    unknown = set(args) - known
    if unknown:
        raise KeyError(f'unknown official HANet options {sorted(unknown)}; known: '
                       f'{sorted(known)}')
    flags = list(args.get('hanet', (1, 1, 1, 1, 0)))
    if len(flags) > 4 and flags[4]:
        raise NotImplementedError('the official fifth HANet placement (decoder output -> '
                                  'logits, max pooling) is not implemented; set hanet[4] = 0')
    ctor = {}
    if 'hanet_set' in args:
        ctor.update(zip(('kernel_size', 'r_factor', 'layer'), args['hanet_set']))
    if 'hanet_pos' in args:
        ctor.update(zip(('pos_injection', 'is_encoding'), args['hanet_pos']))
    for name, official in (('pos_rfactor', 'pos_rfactor'), ('pooling', 'pooling'),
                           ('dropout', 'dropout_prob'), ('pos_noise', 'pos_noise')):
        if name in args:
            ctor[official] = args[name]
    placements = ('layer4', 'aspp', 'bottleneck', 'decoder')
    return dict(hanet_placements=tuple(p for p, on in zip(placements, flags) if on),
                hanet_cfg=official_hanet_kwargs(ctor))
