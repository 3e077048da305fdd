# Copyright (c) mmaffseg contributors. All rights reserved.
"""Red-team round on images, labels, configs and arguments: each test
is one finding that passed the fixes of that issue (payloads built here, nothing downloaded)."""
import argparse
import errno
import importlib.util
import io
import os
import os.path as osp
import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, load_config, registry_error_hints
from mmaffseg.cli.config_checks import check_train_settings, read_config_file
from mmaffseg.cli.runner_setup import check_data_roots, use_checked_image_loading
from mmaffseg.datasets.load_annotations import LoadCheckedAnnotations, LoadCheckedImageFromFile
from mmaffseg.engine.labelled_data_check_hook import LabelledDataCheckHook
from mmaffseg.utils.config_errors import (
    ConfigCheckError,
    ConfigFileError,
    DataFileError,
    DataRootError,
)
from mmaffseg.utils.image_io import _header_pixels

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _module(relpath: str):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(relpath))[0] + '_red_team', osp.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grid(h: int = 20, w: int = 30) -> np.ndarray:
    """An RGB picture whose top half is bright, with a green left edge: any turn shows."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:h // 2] = 200
    img[:, :4, 1] = 255
    return img


def _label(h: int = 20, w: int = 30) -> np.ndarray:
    seg = np.zeros((h, w), np.uint8)
    seg[:h // 2] = 3
    seg[h // 2:, :w // 3] = 7
    return seg


def _load_label(path, shape, **kwargs):
    results = dict(img_path='img', seg_map_path=str(path), ori_shape=shape, img_shape=shape,
                   seg_fields=[], reduce_zero_label=False)
    return LoadCheckedAnnotations(num_classes=19, **kwargs).transform(results)['gt_seg_map']


# -- images: EXIF/TIFF orientation, pixel limit, the demo ---------------------------------------

@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('orientation', [3, 6])
@pytest.mark.parametrize('big_tiff', [False, True])
def test_tiff_orientation_tag_is_ignored(tmp_path, backend, orientation, big_tiff):
    # both decoders turned a TIFF by its orientation tag whatever the flag: tag 3 gave an
    # image upside down over its label map (same shape, trained silently)
    img = _grid()
    path = tmp_path / 'img.tif'
    Image.fromarray(img).save(path, 'TIFF', tiffinfo={274: orientation}, big_tiff=big_tiff)
    for color_type in ('color', 'unchanged'):
        loaded = LoadCheckedImageFromFile(imdecode_backend=backend, color_type=color_type)
        out = loaded.transform(dict(img_path=str(path)))['img']
        assert out.shape == img.shape
        np.testing.assert_array_equal(out[..., ::-1], img)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_tiff_label_map_orientation_tag_is_ignored(tmp_path, backend):
    seg = _label()
    path = tmp_path / 'seg.tif'
    Image.fromarray(seg).save(path, 'TIFF', tiffinfo={274: 3})
    np.testing.assert_array_equal(_load_label(path, seg.shape, imdecode_backend=backend), seg)


def _radiance_hdr(h: int, w: int) -> bytes:
    line = b'\x02\x02' + struct.pack('>H', w)
    for component in (128, 128, 128, 129):
        left, runs = w, b''
        while left:
            run = min(127, left)
            runs += bytes([128 + run, component])
            left -= run
        line += runs
    return b'#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n' % (h, w) + line * h


def test_radiance_hdr_is_refused_before_decoding(tmp_path):
    # Pillow does not know HDR: its run-length coding made a 2 MB file decode to 1 GB before
    # the size was checked
    path = tmp_path / 'bomb.png'  # the name does not matter, the bytes do
    path.write_bytes(_radiance_hdr(40, 300))
    with pytest.raises(DataFileError, match=r'12000 pixels \(40x300\).*refused before decoding'):
        LoadCheckedImageFromFile(max_pixels=1000).transform(dict(img_path=str(path)))
    assert LoadCheckedImageFromFile().transform(dict(img_path=str(path)))['img'].shape == (
        40, 300, 3)


@pytest.mark.parametrize('ext', ['.hdr', '.pfm', '.pam'])
def test_header_size_of_formats_pillow_does_not_know(ext):
    img = np.ones((30, 50, 3), np.float32 if ext != '.pam' else np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    assert _header_pixels(buf.tobytes()) == (1500, ' (30x50)')


def _demo_main(monkeypatch, img_path, out_file):
    demo = _module('demo/image_demo.py')
    seen = {}
    monkeypatch.setattr(demo, 'load_model_or_exit', lambda args: 'model')
    monkeypatch.setattr(demo, 'inference_or_exit', lambda model, image: seen.setdefault(
        'image', image))
    monkeypatch.setattr(demo, 'show_result_pyplot', lambda *a, **k: None)
    demo.main([str(img_path), 'cfg.py', 'ckpt.pth', '--out-file', str(out_file)])
    return seen['image']


def test_image_demo_applies_pixel_limit(tmp_path, monkeypatch):
    # the demo decoded with mmcv.imread: no pixel limit
    path = tmp_path / 'img.png'
    cv2.imwrite(str(path), _grid())
    monkeypatch.setenv('MMAFFSEG_MAX_IMAGE_PIXELS', '100')
    with pytest.raises(SystemExit) as exit_info:
        _demo_main(monkeypatch, path, tmp_path / 'out.png')
    assert exit_info.value.code == 2


def test_image_demo_ignores_exif_orientation(tmp_path, monkeypatch):
    # ... and turned a JPEG by its EXIF tag (the documented policy is the stored grid)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'img.jpg'
    Image.fromarray(_grid()).save(path, exif=exif, quality=95)
    assert _demo_main(monkeypatch, path, tmp_path / 'out.png').shape == (20, 30, 3)


# -- label maps ------------------------------------------------------------------------------

@pytest.mark.parametrize('fill', [0.5, np.nan, np.inf])
def test_float_label_map_with_fractions_or_nan_is_refused(tmp_path, fill):
    # a float TIFF label map was cast to uint8: 3.5 became class 3, nan class 0 (silently)
    seg = _label().astype(np.float32)
    seg[0, 0] = fill
    path = tmp_path / 'seg.tif'
    Image.fromarray(seg, 'F').save(path, 'TIFF')
    with pytest.raises(DataFileError, match='floating-point'):
        _load_label(path, seg.shape)


def test_float_label_map_with_whole_values_loads(tmp_path):
    seg = _label()
    seg[0, 0] = 255
    path = tmp_path / 'seg.tif'
    Image.fromarray(seg.astype(np.float32), 'F').save(path, 'TIFF')
    np.testing.assert_array_equal(_load_label(path, seg.shape), seg)


def test_label_map_symlink_loop_is_named(tmp_path):
    link = tmp_path / 'seg.png'
    os.symlink('seg.png', link)
    with pytest.raises(DataFileError, match='loop of symbolic links'):
        _load_label(link, (20, 30))


def _dataset_cfg(pipeline, **kwargs):
    return Config(dict(test_dataloader=dict(dataset=dict(pipeline=pipeline, **kwargs))))


def test_mmseg_load_annotations_checks_values_of_the_dataset_classes():
    # mmseg's LoadAnnotations became LoadCheckedAnnotations without num_classes: labelIds
    # used as trainIds scored a silent mIoU (IoUMetric drops values >= num_classes)
    cfg = _dataset_cfg([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')],
                       type='CityscapesDataset')
    use_checked_image_loading(cfg)
    load = cfg.test_dataloader.dataset.pipeline[1]
    assert load.type == 'LoadCheckedAnnotations' and load.num_classes == 19
    cfg = _dataset_cfg([dict(type='LoadAnnotations')], type='CityscapesDataset',
                       metainfo=dict(classes=('road', 'car')), ignore_index=0)
    use_checked_image_loading(cfg)
    assert cfg.test_dataloader.dataset.pipeline[0].num_classes == 2
    assert cfg.test_dataloader.dataset.pipeline[0].ignore_index == 0
    cfg = _dataset_cfg([dict(type='LoadAnnotations', num_classes=None)],
                       type='CityscapesDataset')  # the opt-out
    use_checked_image_loading(cfg)
    assert cfg.test_dataloader.dataset.pipeline[0].num_classes is None
    cfg = _dataset_cfg([dict(type='TestTimeAug', transforms=[[dict(type='LoadAnnotations')]])],
                       type='CityscapesDataset')  # mmseg's tta_pipeline
    use_checked_image_loading(cfg)
    nested = cfg.test_dataloader.dataset.pipeline[0].transforms[0][0]
    assert nested.type == 'LoadCheckedAnnotations' and nested.num_classes == 19


class _LabelMaps:
    """A dataset of one label map (what LabelledDataCheckHook reads of a dataset)."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.pipeline = SimpleNamespace(transforms=[LoadCheckedAnnotations(num_classes=19)])

    def __len__(self) -> int:
        return 1

    def get_data_info(self, index: int) -> dict:
        return dict(img_path='img', seg_map_path=self.path, ori_shape=(4, 6), seg_fields=[],
                    reduce_zero_label=False)


def _ignore_only_runner(tmp_path, format_only):
    path = tmp_path / 'seg.png'
    cv2.imwrite(str(path), np.full((4, 6), 255, np.uint8))
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=_LabelMaps(path)),
                           evaluator=SimpleNamespace(
                               metrics=[SimpleNamespace(format_only=format_only)]))
    return SimpleNamespace(test_loop=loop)


def test_format_only_test_of_ignore_only_labels_is_not_refused(tmp_path):
    # Cityscapes' test split has label maps that are all ignore; a test-server submission
    # (format_only=True) was refused as "every label map holds only the ignore index"
    LabelledDataCheckHook().before_test(_ignore_only_runner(tmp_path, format_only=True))
    with pytest.raises(DataFileError, match='evaluate nothing'):
        LabelledDataCheckHook().before_test(_ignore_only_runner(tmp_path, format_only=False))


# -- data folders ----------------------------------------------------------------------------

def _roots_cfg(root, dataset_type='CityscapesDataset'):
    return Config(dict(train_dataloader=dict(dataset=dict(
        type=dataset_type, data_root=root, data_prefix=dict(img_path='img')))))


def test_data_root_that_is_a_file_or_not_a_path(tmp_path):
    # the synthetic dataset (generated on first use, so not checked) ended in a raw
    # FileExistsError traceback
    root = tmp_path / 'file'
    root.write_text('x')
    for dataset_type in ('CityscapesDataset', 'SyntheticCityscapesDataset'):
        with pytest.raises(DataRootError, match='is a file'):
            check_data_roots(_roots_cfg(str(root), dataset_type))
    with pytest.raises(DataRootError, match='not a path'):  # e.g. data_root=[/data]
        check_data_roots(_roots_cfg(['/data']))


def test_dangling_image_link_is_named(tmp_path):
    # mmengine's listing skipped it: the dataset lost the image without a word
    (tmp_path / 'img' / 'city').mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'img' / 'city' / 'a.png'), _grid())
    check_data_roots(_roots_cfg(str(tmp_path)))
    os.symlink('/nonexistent/b.png', tmp_path / 'img' / 'city' / 'b.png')
    with pytest.raises(DataFileError, match=r'b\.png is a symbolic link'):
        check_data_roots(_roots_cfg(str(tmp_path)))


def test_folder_link_to_an_ancestor_is_a_loop(tmp_path):
    (tmp_path / 'img' / 'a' / 'b').mkdir(parents=True)
    os.symlink('../..', tmp_path / 'img' / 'a' / 'b' / 'up')
    with pytest.raises(OSError) as error:
        check_data_roots(_roots_cfg(str(tmp_path)))
    assert error.value.errno == errno.ELOOP and error.value.filename.endswith('up')


# -- config files ----------------------------------------------------------------------------

def test_circular_base_is_one_line(tmp_path):
    # mmengine recursed until a RecursionError (a 2500-line traceback)
    (tmp_path / 'a.py').write_text("_base_ = ['./b.py']\n")
    (tmp_path / 'b.py').write_text("_base_ = './a.py'\n")
    (tmp_path / 'self.py').write_text("_base_ = ['./self.py']\n")
    with pytest.raises(ConfigCheckError, match=r'circle: .*a\.py -> .*b\.py -> .*a\.py'):
        read_config_file(str(tmp_path / 'a.py'))
    with pytest.raises(ConfigCheckError, match='circle'):
        read_config_file(str(tmp_path / 'self.py'))


def test_base_that_is_a_folder(tmp_path):
    # the message read 'reads file "X" does not exist, which does not exist'
    (tmp_path / 'base').mkdir()
    (tmp_path / 'cfg.py').write_text("_base_ = ['./base']\n")
    with pytest.raises(ConfigFileError, match='is a folder, not a config file') as error:
        read_config_file(str(tmp_path / 'cfg.py'))
    assert 'file "' not in str(error.value)


def _train_cfg(size=(128, 256), crop=(128, 256), wrap=False, **train_cfg):
    crop_t = dict(type='RandomCrop', crop_size=crop)
    pipeline = [dict(type='RandomChoice', transforms=[[crop_t]])] if wrap else [crop_t]
    return Config(dict(
        model=dict(data_preprocessor=dict(size=size)),
        train_dataloader=dict(dataset=dict(pipeline=pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', **train_cfg)))


def test_crop_smaller_than_preprocessor_size_is_accepted():
    # it is padded to the size (mmseg's stack_batch) and trains; it was refused
    check_train_settings(_train_cfg(size=(160, 288), crop=(128, 256)))
    with pytest.raises(ConfigCheckError, match='crop_size'):
        check_train_settings(_train_cfg(size=(128, 256), crop=(128, 300)))


def test_crop_larger_than_size_inside_a_wrapper_is_refused():
    with pytest.raises(ConfigCheckError, match=r'pipeline\.0\.transforms\.0\.0\.crop_size'):
        check_train_settings(_train_cfg(size=(128, 256), crop=(160, 288), wrap=True))


@pytest.mark.parametrize('value', [-1, 0, True, 2.5, float('inf'), '10'])
def test_length_of_training_must_be_a_whole_number(value):
    # -1 and 0 trained nothing with exit 0, True trained 1 iteration
    with pytest.raises(ConfigCheckError, match='train_cfg.max_iters'):
        check_train_settings(_train_cfg(max_iters=value))
    check_train_settings(_train_cfg(max_iters=1000.0))  # mmengine takes a whole float


def test_misspelt_argument_of_a_typed_dict_in_a_config_file_is_one_line():
    # a raw TypeError traceback ("got an unexpected keyword argument")
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli.errors import ConfigArgumentError
    init_default_scope('mmseg')
    with pytest.raises(ConfigArgumentError, match='did you mean use_sigmoid') as error:
        with registry_error_hints():
            MODELS.build(dict(type='CrossEntropyLoss', use_sigmod=True))
    assert isinstance(error.value, TypeError) and 'CrossEntropyLoss' in str(error.value)


# -- --cfg-options and tool arguments --------------------------------------------------------

def _options(*words):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *words]).cfg_options


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("train_cfg = dict(type='IterBasedTrainLoop', max_iters=10)\n"
                    "train_dataloader = dict(batch_size=2, dataset=dict(data_root='data'))\n")
    return str(path)


@pytest.mark.parametrize('word', ['train_cfg.max_iters=true', 'train_cfg.max_iters=2.5'])
def test_boolean_or_fraction_for_an_integer_is_refused(config_file, word):
    # True trained 1 iteration (exit 0); 2.5 stopped in mmengine with an AssertionError
    with pytest.raises(ConfigCheckError, match='expected an integer'):
        load_config(config_file, _options(word))


def test_whole_float_for_an_integer_is_that_integer(config_file):
    # torch's DataLoader refused batch_size=2.0 with a raw ValueError
    cfg = load_config(config_file, _options('train_dataloader.batch_size=4.0',
                                            'train_cfg.max_iters=1e3'))
    assert cfg.train_dataloader.batch_size == 4 and type(cfg.train_dataloader.batch_size) is int
    assert cfg.train_cfg.max_iters == 1000


def test_path_with_a_comma_stays_a_path(config_file):
    # mmengine made it the list ['/data/a', 'b']: a raw TypeError (and for the synthetic
    # dataset, another folder)
    cfg = load_config(config_file, _options('train_dataloader.dataset.data_root=/data/a,b'))
    assert cfg.train_dataloader.dataset.data_root == '/data/a,b'
    cfg = load_config(config_file, _options('train_dataloader.dataset.data_root=[/a,/b]'))
    assert cfg.train_dataloader.dataset.data_root == ['/a', '/b']  # brackets: a list
    cfg = load_config(config_file, _options('custom=1,2'))  # new keys: mmengine's parsing
    assert cfg.custom == [1, 2] and type(cfg.custom) is list


def test_spaces_around_a_key(config_file):
    # ' train_cfg.max_iters=2' added the top-level key ' train_cfg' (the override was lost
    # and mmengine's config dump failed with a raw SyntaxError)
    cfg = load_config(config_file, _options(' train_cfg.max_iters=2'))
    assert cfg.train_cfg.max_iters == 2 and ' train_cfg' not in cfg
    with pytest.raises(SystemExit):
        _options('train_cfg. max iters=2')


@pytest.mark.parametrize('shape', [(20000, 20000), (1000000, 1000000)])
def test_pytorch2onnx_shape_above_the_pixel_limit(shape):
    # 1e6 x 1e6: a raw allocation RuntimeError; 20000 x 20000 ran out of memory
    tool = _module('tools/deployment/pytorch2onnx.py')
    with pytest.raises(SystemExit) as exit_info:
        tool.check_shapes(argparse.Namespace(shape=list(shape), verify_shape=None))
    assert exit_info.value.code == 2
    tool.check_shapes(argparse.Namespace(shape=[1024, 2048], verify_shape=[1032, 2040]))


def test_tiff_in_memory_patch_keeps_other_bytes():
    buf = io.BytesIO()
    Image.fromarray(_grid()).save(buf, 'TIFF', tiffinfo={274: 8})
    from mmaffseg.utils.image_io import _tiff_without_orientation
    patched = _tiff_without_orientation(buf.getvalue())
    assert len(patched) == len(buf.getvalue())
    assert sum(a != b for a, b in zip(patched, buf.getvalue())) == 1
    assert Image.open(io.BytesIO(patched)).getexif().get(274) == 1
