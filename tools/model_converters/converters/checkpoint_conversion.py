# Copyright (c) mmaffseg contributors. All rights reserved.
"""Plumbing shared by the official-checkpoint converters (``tools/model_converters``).

A converter is a list of ``(regex, replacement)`` rules matched at the start of each official
key (the first matching rule wins) plus :func:`converter_main`, the command line around it.
"""
import argparse
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

KeyRules = List[Tuple[str, str]]


def conv_norm_rules(src: str, dst: str) -> KeyRules:
    """Rules for an official ``Sequential(conv, norm, ...)`` that is a ``ConvModule`` here."""
    return [(re.escape(src + '.0.'), dst + '.conv.'), (re.escape(src + '.1.'), dst + '.bn.')]


def prefixed_rules(src_prefix: str, dst_prefix: str, rules: KeyRules) -> KeyRules:
    """The rules of a sub-module, moved under an official and an mmaffseg key prefix.

    ``src_prefix`` is a regex (it may hold groups; they shift the groups of ``rules``, so keep
    group references only in ``dst_prefix``); ``dst_prefix`` may use them.
    """
    return [(src_prefix + pattern, dst_prefix + repl) for pattern, repl in rules]


def map_state_dict_keys(state_dict: Dict[str, Tensor], rules: KeyRules,
                        source: str) -> 'OrderedDict[str, Tensor]':
    """Rename every key by the first rule whose regex matches its start.

    Args:
        state_dict (dict[str, Tensor]): Official weights; a ``module.`` prefix (DataParallel)
            is stripped first.
        rules (list[tuple[str, str]]): ``(regex, replacement)`` pairs.
        source (str): What the weights are, for the error message.

    Returns:
        OrderedDict[str, Tensor]: The renamed weights, in the source order.

    Raises:
        KeyError: If some keys match no rule.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        for pattern, repl in compiled:
            match = pattern.match(key)
            if match:
                out[match.expand(repl) + key[match.end():]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} keys are not weights of an official {source}, e.g. '
                       f'{unknown[:5]}; check that the checkpoint is one.')
    return out


def load_official_state_dict(path: str, trust: bool = False) -> Dict[str, Tensor]:
    """Read the state dict of an official checkpoint (``state_dict``/``model`` unwrapped).

    Args:
        path (str): Checkpoint file.
        trust (bool): Unpickle arbitrary objects (only for files you trust). Defaults to False:
            safe loading (tensors, plain containers and what mmengine writes, see
            :mod:`mmaffseg.utils.safe_load`).
    """
    from mmaffseg.utils.safe_load import CheckpointError, load_checkpoint_file
    try:
        checkpoint = load_checkpoint_file(path, map_location='cpu', trusted=trust)
    except CheckpointError as e:
        hint = ('. Re-run with --trust if you trust the file (it unpickles SRC in full)'
                if 'refused' in e.reason else '')
        raise SystemExit(f'{e}{hint}') from None
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            checkpoint = checkpoint[key]
    return checkpoint


def converter_main(convert: Callable[[Dict[str, Tensor]], Dict[str, Tensor]],
                   description: str,
                   argv: Optional[Sequence[str]] = None) -> None:
    """Command line ``SRC DST [--trust]``: load, convert, save ``dict(state_dict=...)``.

    Args:
        convert (Callable): Official state dict -> mmaffseg state dict.
        description (str): Help text.
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--trust', action='store_true',
                        help='unpickle arbitrary objects in SRC (only for files you trust)')
    args = parser.parse_args(argv)
    state_dict = load_official_state_dict(args.src, args.trust)
    converted = convert(state_dict)
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(dict(state_dict=converted, meta=dict(converted_from=osp.basename(args.src))),
               args.dst)
    print(f'converted {len(state_dict)} official entries to {len(converted)} -> {args.dst}')
