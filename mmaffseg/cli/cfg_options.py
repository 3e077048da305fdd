# Copyright (c) mmaffseg contributors. All rights reserved.
"""Catch misspelt ``--cfg-options`` keys before anything is built.

mmengine's ``Config.merge_from_dict`` adds any key it is given: a misspelt one
(``model.decode_head.num_clases=3``, ``train_cfg.max_iter=2``) becomes an unexpected keyword
argument deep inside the builder, or a setting nobody reads. Adding keys is legitimate
(``model.test_cfg.mode=slide``, a new top-level key, an argument the config leaves at its
default), so :func:`check_cfg_options` rejects only a key that

* is new where it is added (its parent exists in the config and lacks it),
* is added to a registry-built dict (the parent has a ``type``),
* is not an argument of the class that ``type`` names (when the registries know it), and
* is close to a key the parent already has (:func:`difflib.get_close_matches`), which the
  message lists.

It also rejects a value that replaces a number or a boolean of the config with text
(``train_cfg.max_iters=1O``: the letter O), a number with a boolean (``max_iters=true``, which
mmengine trains as 1) and an integer with a fraction (``max_iters=2.5``);
:func:`normalize_cfg_options` keeps a whole float given for an integer as that integer and text
with commas given for text as that text (mmengine makes ``data_root=/data/a,b`` a list).
:class:`CfgOptionsAction` parses the command line:
mmengine's ``DictAction`` deletes every space of a value (``data_root=/data/my data`` becomes
``/data/mydata``); this one keeps a value with spaces as given, refuses a list item with one,
and strips the spaces around a key (``' train_cfg.max_iters=2'`` made a new top-level key
``' train_cfg'`` that mmengine could not even print).
"""
import argparse
import copy
import difflib
import inspect
import math
import re
from typing import Any, List, Mapping, Optional, Sequence

from mmengine.config import Config, DictAction

from ..utils.config_errors import ConfigCheckError

_MISSING = object()


def _registered(kind: Any) -> List[Any]:
    """The classes (or builder functions) a ``type`` value names, in any of mmseg's registries
    and their mmengine parents (empty when none knows it)."""
    if inspect.isclass(kind) or callable(kind):
        return [kind]
    if not isinstance(kind, str):
        return []
    import mmseg.registry as seg_registry
    from mmengine.registry import Registry
    found = []
    for registry in vars(seg_registry).values():
        if not isinstance(registry, Registry):
            continue
        try:
            obj = registry.get(kind)
        except Exception:  # noqa: BLE001 - not in this registry
            obj = None
        if obj is not None and obj not in found:
            found.append(obj)
    return found


def _arguments(obj: Any) -> Optional[set]:
    """Named arguments of a class (every ``__init__`` along its MRO: ``**kwargs`` usually goes
    to a base class) or function; None when they cannot be read."""
    functions = ([c.__dict__['__init__'] for c in obj.__mro__ if '__init__' in c.__dict__]
                 if inspect.isclass(obj) else [obj])
    names = set()
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names


def _child(node: Any, key: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(key, _MISSING)
    if isinstance(node, (list, tuple)) and key.lstrip('-').isdigit():
        index = int(key)
        return node[index] if -len(node) <= index < len(node) else _MISSING
    return _MISSING


def _check_new_key(parent: Mapping, parent_path: str, key: str, full_key: str,
                   options: Mapping) -> None:
    kind = options.get(f'{parent_path}.type', parent.get('type'))  # a new type: its arguments
    close = difflib.get_close_matches(key, [str(k) for k in parent], n=3, cutoff=0.6)
    if not close:
        return
    classes = _registered(kind)
    arguments = [_arguments(obj) for obj in classes]
    if any(names is None or key in names for names in arguments):
        return  # an argument the config leaves at its default
    name = str(getattr(kind, '__name__', kind))
    raise ConfigCheckError(
        f'--cfg-options {full_key}: {parent_path} ({name}) has no setting {key!r}'
        f'{", and " + name + " takes no such argument" if classes else ""}. Did you mean '
        f'{" or ".join(f"{parent_path}.{c}" for c in close)}?')


def _flatten(options: Mapping, prefix: str = '') -> dict:
    """Nested dict values as dotted keys (``merge_from_dict`` merges them key by key); a dict
    with ``_delete_`` replaces what it names and stays whole."""
    flat = {}
    for key, value in options.items():
        full_key = f'{prefix}{key}'
        if isinstance(value, Mapping) and value and not value.get('_delete_'):
            flat.update(_flatten(value, full_key + '.'))
        else:
            flat[full_key] = value
    return flat


def _check_value(full_key: str, old: Any, new: Any) -> None:
    """A number or boolean of the config replaced by text (a typo such as ``1O``), a number
    replaced by a boolean (``max_iters=true`` trains 1 iteration: ``True`` is 1) or an
    integer by a fraction (``max_iters=2.5``)."""
    if old is None or not isinstance(old, (bool, int, float)):
        return
    kind = 'true or false' if isinstance(old, bool) else (
        'an integer' if isinstance(old, int) else 'a number')
    if isinstance(new, str):
        got = f'the text {new!r}'
    elif isinstance(new, bool) and not isinstance(old, bool):
        got = f'the boolean {new!r}'
    elif (isinstance(new, float) and isinstance(old, int) and not isinstance(old, bool)
          and not (math.isfinite(new) and new == int(new))):
        got = f'the fraction {new!r}'
    else:
        return
    raise ConfigCheckError(f'--cfg-options {full_key}={new}: expected {kind} (the config has '
                           f'{old!r}), got {got}')


def _config_value(root: Mapping, full_key: str) -> Any:
    """The value a dotted key names in the config (``_MISSING`` when absent)."""
    node: Any = root
    for key in full_key.split('.'):
        node = _child(node, key)
        if node is _MISSING:
            break
    return node


def normalize_cfg_options(cfg: Config, options: Optional[Mapping]) -> dict:
    """``options`` (flat ``--cfg-options``, as :class:`CfgOptionsAction` parses them) with two
    values kept as the config means them, to merge instead of the parsed ones:

    * a whole float given for an integer of the config is that integer (``batch_size=2.0``,
      ``max_iters=1e3``: torch's DataLoader refuses the float);
    * text with commas but no brackets given for text of the config is that text
      (``data_root=/data/a,b``; mmengine makes it the list ``['/data/a', 'b']``). A list is
      written with brackets (``[a,b]``).
    """
    root = {key: cfg[key] for key in cfg.keys()}
    normalized = dict(options or {})
    for full_key, new in normalized.items():
        old = _config_value(root, full_key)
        if (isinstance(new, float) and isinstance(old, int) and not isinstance(old, bool)
                and math.isfinite(new) and new == int(new)):
            normalized[full_key] = int(new)
        elif isinstance(new, _CommaList):
            normalized[full_key] = new.text if isinstance(old, str) else list(new)
    return normalized


def check_cfg_options(cfg: Config, options: Optional[Mapping]) -> None:
    """Raise :class:`ConfigCheckError` on a misspelt ``--cfg-options`` key, or on text given
    for a number or boolean of the config (module docstring).

    Args:
        cfg (Config): The config the options will be merged into (not yet merged).
        options (Mapping, optional): ``--cfg-options`` as ``DictAction`` parses them
            (``{'model.decode_head.num_classes': 3, ...}``; nested dicts are checked key by
            key).
    """
    flat = _flatten(options or {})
    root = {key: cfg[key] for key in cfg.keys()}  # a Config is no Mapping
    for full_key in flat:
        path = full_key.split('.')
        node = root
        for depth, key in enumerate(path):
            if key.startswith('_'):  # _delete_ and friends
                break
            child = _child(node, key)
            if child is _MISSING:
                if isinstance(node, Mapping) and 'type' in node:
                    _check_new_key(node, '.'.join(path[:depth]), key, full_key, flat)
                break
            if depth == len(path) - 1:
                _check_value(full_key, child, flat[full_key])
            node = child


_LIST_SPACE = re.compile(r'\s*([\[\](),])\s*')


class _CommaList(list):
    """A list mmengine's parser made of text with commas and no brackets (``a,b``); ``text``
    is that text (:func:`normalize_cfg_options` keeps it where the config has text)."""

    def __init__(self, items=(), text: str = '') -> None:
        super().__init__(items)
        self.text = text


def _parsed(text: str) -> Any:
    """mmengine's ``DictAction`` parsing of one value; a list made of bare commas is a
    :class:`_CommaList` carrying the text."""
    value = DictAction._parse_iterable(text)
    inner = text.strip().strip('\'"')
    if isinstance(value, list) and not inner.startswith(('[', '(')):
        return _CommaList(value, inner)
    return value


def parse_cfg_option_value(key: str, value: str) -> Any:
    """The value of one ``KEY=VALUE`` of ``--cfg-options``: mmengine's ``DictAction`` parsing
    (numbers, ``True``/``False``/``None``, ``[a,b]`` lists, ``(a,b)`` tuples) when the value
    holds no space; a value with spaces that is no list is kept as given (a path with a space
    stays that path).

    Raises:
        ValueError: A list or tuple item holds a space (mmengine would delete it).
    """
    inner = value.strip().strip('\'"')
    if not any(c.isspace() for c in inner):  # at most around the value: mmengine's parsing
        return _parsed(value.strip())
    if inner.startswith(('[', '(')) or ',' in inner:
        packed = _LIST_SPACE.sub(r'\1', inner.strip())
        if any(c.isspace() for c in packed):
            raise ValueError(f'--cfg-options {key}={value}: an item of the list holds a space, '
                             'which --cfg-options cannot keep; set it in the config file')
        return _parsed(packed)
    return inner


class CfgOptionsAction(DictAction):
    """``--cfg-options KEY=VALUE ...`` as mmengine's ``DictAction``, but a value with spaces
    is kept as given (:func:`parse_cfg_option_value`) and a word without ``=`` is an argparse
    error naming it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Optional[Sequence[str]], option_string: Optional[str] = None) -> None:
        options = copy.copy(getattr(namespace, self.dest, None) or {})
        for word in values or []:
            if '=' not in word:
                parser.error(f'{option_string}: {word!r} is not KEY=VALUE')
            key, value = word.split('=', maxsplit=1)
            key = key.strip()  # ' train_cfg.max_iters' would be a new top-level key
            if not key or any(c.isspace() for c in key):
                parser.error(f'{option_string}: {word!r}: the key {key!r} holds a space')
            try:
                options[key] = parse_cfg_option_value(key, value)
            except ValueError as e:
                parser.error(str(e))
        setattr(namespace, self.dest, options)
