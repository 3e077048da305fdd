# Copyright (c) mmaffseg contributors. All rights reserved.
"""Install mmaffseg. The compiled OpenMMLab stack is installed by ``tools/install.sh``."""
import os
import os.path as osp
import shutil
import sys
import warnings

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))

#: Folders of the checkout that are not installed as packages: ``configs/`` and ``tools/`` ride
#: along as data (``mmaffseg/.mim``, for mim), ``tests/`` and ``projects/`` stay in the checkout.
#: The tools' own packages (``tools/analysis_tools/benchmarks``,
#: ``tools/model_converters/converters``) are therefore never importable parts of mmaffseg.
EXCLUDED_PACKAGES = ('configs', 'configs.*', 'tools', 'tools.*', 'tests', 'tests.*', 'projects',
                     'projects.*')


def packages() -> list:
    """The packages the wheel installs: ``mmaffseg`` and its sub-packages."""
    return find_packages(HERE, exclude=EXCLUDED_PACKAGES)


def readme() -> str:
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmaffseg', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'mmaffseg/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read a requirements file, following ``-r`` includes; comments are dropped."""
    reqs = []
    with open(osp.join(HERE, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(
                    osp.join(osp.dirname(fname), line.split(' ', 1)[1].strip()))
            else:
                reqs.append(line)
    return reqs


def add_mim_extension() -> None:
    """Expose ``configs/`` and ``tools/`` as ``mmaffseg/.mim``, with a model index.

    mmengine resolves ``mmaffseg::path/to/config.py`` to ``<package>/.mim/configs/...``, the
    same mechanism mmseg uses. Develop (editable) installs get symlinks, others get copies.
    ``.mim/model-index.yml`` lists the metafiles of ``configs/`` (for ``mim search``, and read
    by mmengine when it looks up a config by name).
    """
    if 'develop' in sys.argv or any(a.startswith('editable') for a in sys.argv):
        mode = 'symlink'
    elif any(a in sys.argv for a in ('sdist', 'bdist_wheel', 'install', 'build_py')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'mmaffseg', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools'):
        src = osp.join(HERE, name)
        dst = osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_path), dst)
                continue
            except OSError:
                warnings.warn(f'Could not symlink {dst}; copying instead.', stacklevel=2)
        if osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
    index = osp.join(mim_path, 'model-index.yml')
    if osp.lexists(index):  # an older install linked it to a file of the checkout
        os.remove(index)
    with open(index, 'w', encoding='utf-8') as f:
        f.write(model_index())


def model_index() -> str:
    """``model-index.yml`` importing every ``configs/<method>/metafile.yaml`` (as mmseg's).

    The paths are relative to ``.mim``, where ``configs/`` is linked or copied, so ``mim
    search mmaffseg`` finds the models in editable and regular installs alike.
    """
    metafiles = sorted(
        f'configs/{name}/metafile.yaml' for name in os.listdir(osp.join(HERE, 'configs'))
        if osp.isfile(osp.join(HERE, 'configs', name, 'metafile.yaml')))
    return '# The metafiles of configs/; written by setup.py.\nImport:\n' + ''.join(
        f'- {path}\n' for path in metafiles)


#: Files of the ``mmaffseg`` package that are not Python modules (globs relative to it): the
#: configs, tools and model index mim finds (links made by the editable install) and the
#: random walk's C++ kernel source, compiled on first use.
PACKAGE_DATA = ['.mim/configs/**/*', '.mim/tools/**/*', '.mim/model-index.yml', 'wsss/*.cpp']

if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmaffseg',
        version=get_version(),
        description='Affinity- and attention-based semantic segmentation for MMSegmentation',
        long_description=readme(),
        long_description_content_type='text/markdown',
        author='mmaffseg contributors',
        keywords='computer vision, semantic segmentation, affinity, attention, weak supervision',
        packages=packages(),
        include_package_data=True,
        package_data={'mmaffseg': PACKAGE_DATA},
        python_requires='>=3.8',
        classifiers=[
            'Programming Language :: Python :: 3',
            'License :: OSI Approved :: Apache Software License',
            'Topic :: Scientific/Engineering :: Image Recognition',
        ],
        license='Apache License 2.0',
        install_requires=parse_requirements('requirements/runtime.txt') +
        parse_requirements('requirements/mminstall.txt'),
        extras_require={
            'all': parse_requirements('requirements/tests.txt') +
            parse_requirements('requirements/optional.txt') +
            parse_requirements('requirements/docs.txt') +
            parse_requirements('requirements/tools.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
            'optional': parse_requirements('requirements/optional.txt'),
            'docs': parse_requirements('requirements/docs.txt'),
            'tools': parse_requirements('requirements/tools.txt'),
            'mim': parse_requirements('requirements/mminstall.txt'),
        },
        zip_safe=False)
