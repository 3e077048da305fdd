# Copyright (c) mmaffseg contributors. All rights reserved.
"""Fully connected (dense) CRF refinement of per-pixel class probabilities.

Kraehenbuehl, P. and Koltun, V. "Efficient Inference in Fully Connected CRFs with Gaussian Edge
Potentials". NeurIPS 2011. Used as post-processing by DeepLab (Chen et al., "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs", ICLR 2015) and by PSA /
AffinityNet (Ahn and Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision
for Weakly Supervised Semantic Segmentation", CVPR 2018).

This is the one dense CRF of mmaffseg: the weakly supervised pipeline, the pseudo-label runner
and the test-time :class:`~mmaffseg.models.segmentors.CRFRefineSegmentor` all call
:class:`DenseCRF`.

Energy, for a labelling x of the pixels i with colours I_i and positions p_i::

    E(x) = sum_i U_i(x_i) + sum_{i<j} mu(x_i, x_j) * k(f_i, f_j)
    U_i(l) = -log(clip(P_i(l), 1e-5, 1))                        (unary from the network)
    k = w_g * exp(-|p_i - p_j|^2 / (2 sxy_g^2))                   (Gaussian / smoothness)
      + w_b * exp(-|p_i - p_j|^2 / (2 sxy_b^2) - |I_i - I_j|^2 / (2 srgb^2))   (bilateral)

with the Potts compatibility mu = [x_i != x_j]. Mean-field inference returns the approximate
marginals Q (C, H, W), which sum to 1 over the classes. The unary is exactly
``pydensecrf.utils.unary_from_softmax``: the probabilities are clipped, not renormalised, so
un-normalised scores (e.g. PSA's ``[(1 - max CAM)^alpha, CAMs]``) give the same Q as the official
code. Filtering uses pydensecrf's permutohedral lattice (an approximation of the Gaussian
filters); an exact dense filter gives visibly different numbers.

Settings (``DenseCRF`` arguments: ``gaussian_sxy``/``gaussian_compat`` = sxy_g/w_g,
``bilateral_sxy``/``bilateral_srgb``/``bilateral_compat`` = sxy_b/srgb/w_b):

=================  ===========  ==============  ========================  ==========
source             Gaussian     bilateral       bilateral                 iterations
                   sxy, w       sxy, srgb       w
=================  ===========  ==============  ========================  ==========
PSA (defaults)     3, 3         80, 13          10                        10
DeepLab v1 LFOV    3, 3         121, 5          4                         10
DeepLab v2 R-101   1, 3         67, 3           4                         10
DeepLab v2 VGG-16  2, 2         65, 3           4                         10
=================  ===========  ==============  ========================  ==========

(DeepLab's values were grid-searched on VOC val per model; configs/_base_/models/deeplab_crf.py
and deeplabv2_crf.py hold them.)

``scale_factor`` divides both spatial standard deviations (PSA runs the CRF on down-scaled
images with ``scale_factor`` < 1 to keep the kernels the same size in the original image).

Facts to know before using it:

* **Speed.** pydensecrf runs on one CPU core per image: about 0.3 s (3 labels) to 1 s (21 labels)
  for a 375x500 image, growing linearly with pixels x labels. A Cityscapes frame (1024x2048, 19
  labels) takes several seconds. :meth:`DenseCRF.batch` therefore spreads the images of a batch
  over a pool of ``workers`` processes (``workers='auto'``: one per core this process may run on,
  divided among the ranks of a distributed run); the order of the results is the order of the
  inputs and the marginals are bit-identical to the serial ones. The pool is started on the first
  pooled batch and **reused** by the later batches of the same thread (a process start per batch,
  and with ``spawn`` / ``forkserver`` the import of mmaffseg in every new worker, cost more than a
  small batch's work), until :meth:`DenseCRF.close`, a crashed worker or the garbage collection of
  the ``DenseCRF``. A batch of one image runs in the calling process. Each worker runs one thread
  (pydensecrf and the numpy of the unary are single-threaded; torch's intra-op pool is set to 1
  thread), so W workers use W cores. The cost of the pool is pickling each image's probabilities
  to a worker and its marginals back (about 2-3 % of the CRF's CPU time at 375x500 and 21 labels).
* **Trusted input only.** pydensecrf is compiled C++ code that does not validate what it gets:
  an image whose size differs from the unary's, a non-contiguous array or a wrong dtype makes it
  read the wrong memory (garbage output or a crash of the worker). :class:`DenseCRF` checks
  shapes, dtypes and finiteness and makes every array C-contiguous before calling it, so the
  errors are Python exceptions that say what to change. The worker pool moves arrays between
  processes with pickle, which is fine for data this process produced; never feed it pickles
  from elsewhere.
* **Errors name the image.** An exception in a worker is raised as :class:`CRFWorkerError`
  with the index of the image in the batch (the worker's traceback chained); a worker that dies
  (e.g. a crash inside pydensecrf) raises it too, and the next batch starts a new pool.
* **Workers die with their parent.** A pool worker exits when the process that started it dies,
  even by SIGKILL (``prctl(PR_SET_PDEATHSIG)`` on Linux, and on every platform a thread that
  polls the parent's pid), so a killed run leaves no orphaned CRF processes behind
  (:mod:`mmaffseg.postprocessing.worker_pool`).
* pydensecrf itself is an optional dependency (``pip install pydensecrf2==1.1``, module
  ``pydensecrf``); it is imported on first use, with an install hint if missing.
"""
import multiprocessing
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from mmaffseg.ops.psa_defaults import PSA_CRF

from .worker_pool import PersistentPool, SerialTasks, WorkerTaskError, cpus_per_rank

#: Raised by :meth:`DenseCRF.batch` for an image that failed in a worker (``.index``).
CRFWorkerError = WorkerTaskError

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Probabilities below this are clipped before the log (as ``unary_from_softmax``).
UNARY_CLIP = 1e-5


def _import_densecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:
        raise ImportError(
            'DenseCRF needs pydensecrf (module "pydensecrf"), which is not installed. Install it '
            'with `pip install pydensecrf2==1.1` (or `bash tools/install.sh`).') from e
    return dcrf


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f'DenseCRF: {name} must be a numpy array or torch tensor, got {type(x)}')


def unary_from_probs(probs: np.ndarray, clip: float = UNARY_CLIP) -> np.ndarray:
    """Unary energy ``-log(clip(probs, clip, 1))`` as pydensecrf's ``unary_from_softmax``.

    Args:
        probs (np.ndarray): (C, H, W) probabilities or non-negative scores (not renormalised).
        clip (float): Lower clip of the probabilities. Defaults to 1e-5.

    Returns:
        np.ndarray: (C, H*W) float32, C-contiguous.
    """
    # The log is taken in the input precision and only then cast, as pydensecrf.utils does.
    unary = -np.log(np.clip(probs, clip, 1.0)).reshape(probs.shape[0], -1)
    return np.ascontiguousarray(unary, dtype=np.float32)


class DenseCRF:
    """Dense CRF (pydensecrf) over class probabilities, one image or a batch in a process pool.

    Build from config with ``DenseCRF(**cfg)``. See the module docstring for the energy, the
    published settings, speed and the trusted-input caveat. The six kernel and iteration
    settings default to PSA's (:data:`~mmaffseg.ops.psa_defaults.PSA_CRF`, the module
    docstring's first row), so ``DenseCRF(workers=4)`` is PSA's CRF.

    Args:
        iterations (int): Mean-field iterations.
        gaussian_sxy (float): Spatial std of the Gaussian (smoothness) kernel, pixels.
        gaussian_compat (float): Weight of the Gaussian kernel (Potts).
        bilateral_sxy (float): Spatial std of the bilateral (appearance) kernel, pixels.
        bilateral_srgb (float): Colour std of the bilateral kernel, in 0-255 units.
        bilateral_compat (float): Weight of the bilateral kernel (Potts).
        scale_factor (float): Both spatial stds are divided by it. Defaults to 1.
        workers (int | str): Processes used by :meth:`batch`; 0 or 1 runs serially in this
            process; ``'auto'``: one per core this process may run on, shared among the ranks
            of a distributed run on this machine (``LOCAL_WORLD_SIZE``; serial on one core).
            The resolved number is ``self.workers``. Defaults to 0.
        start_method (str, optional): multiprocessing start method of the pool (``'fork'``,
            ``'spawn'``, ``'forkserver'``); None uses the platform default. Defaults to None.
    """

    def __init__(self,
                 iterations: int = PSA_CRF['iterations'],
                 gaussian_sxy: float = PSA_CRF['gaussian_sxy'],
                 gaussian_compat: float = PSA_CRF['gaussian_compat'],
                 bilateral_sxy: float = PSA_CRF['bilateral_sxy'],
                 bilateral_srgb: float = PSA_CRF['bilateral_srgb'],
                 bilateral_compat: float = PSA_CRF['bilateral_compat'],
                 scale_factor: float = 1.0,
                 workers: Union[int, str] = 0,
                 start_method: Optional[str] = None) -> None:
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f'DenseCRF: iterations must be a positive integer, got {iterations}')
        for name, value in (('gaussian_sxy', gaussian_sxy), ('bilateral_sxy', bilateral_sxy),
                            ('bilateral_srgb', bilateral_srgb), ('scale_factor', scale_factor)):
            if not value > 0:
                raise ValueError(f'DenseCRF: {name} must be > 0, got {value}')
        for name, value in (('gaussian_compat', gaussian_compat),
                            ('bilateral_compat', bilateral_compat)):
            if not value >= 0:
                raise ValueError(f'DenseCRF: {name} must be >= 0 (a kernel weight), got {value}')
        if workers == 'auto':
            workers = cpus_per_rank()
        if (isinstance(workers, str) or isinstance(workers, bool) or int(workers) != workers
                or workers < 0):
            raise ValueError(f'DenseCRF: workers must be an integer >= 0 (0 or 1 = serial) or '
                             f"'auto' (one per available core), got {workers!r}")
        if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(f'DenseCRF: start_method must be one of '
                             f'{multiprocessing.get_all_start_methods()} or None, got '
                             f'{start_method!r}')
        self.iterations = int(iterations)
        self.gaussian_sxy = float(gaussian_sxy)
        self.gaussian_compat = float(gaussian_compat)
        self.bilateral_sxy = float(bilateral_sxy)
        self.bilateral_srgb = float(bilateral_srgb)
        self.bilateral_compat = float(bilateral_compat)
        self.scale_factor = float(scale_factor)
        self.workers = int(workers)
        self.start_method = start_method
        self._pool = PersistentPool(start_method)

    def __enter__(self) -> 'DenseCRF':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Shut the worker pool down (a later pooled batch starts a new one)."""
        self._pool.close()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(iterations={self.iterations}, '
                f'gaussian_sxy={self.gaussian_sxy}, gaussian_compat={self.gaussian_compat}, '
                f'bilateral_sxy={self.bilateral_sxy}, bilateral_srgb={self.bilateral_srgb}, '
                f'bilateral_compat={self.bilateral_compat}, scale_factor={self.scale_factor}, '
                f'workers={self.workers})')

    @staticmethod
    def check_inputs(probs: ArrayLike, img: ArrayLike) -> tuple:
        """Validate one (probs, img) pair; return them as C-contiguous numpy arrays.

        Args:
            probs (np.ndarray | torch.Tensor): (C, H, W) floating probabilities or scores.
            img (np.ndarray | torch.Tensor): (H, W, 3) uint8 image.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``probs`` (float32 or float64) and ``img`` (uint8).
        """
        probs = _to_numpy(probs, 'probs')
        img = _to_numpy(img, 'img')
        if probs.ndim != 3:
            raise ValueError(f'DenseCRF: probs must be (C, H, W), got shape {probs.shape}')
        if not np.issubdtype(probs.dtype, np.floating):
            raise TypeError(f'DenseCRF: probs must be floating point (probabilities), got '
                            f'{probs.dtype}; for logits apply softmax over the class axis first')
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'DenseCRF: img must be (H, W, 3) (channels last, RGB), got shape '
                             f'{img.shape}; for a (3, H, W) tensor use img.transpose(1, 2, 0)')
        if img.dtype != np.uint8:
            raise TypeError(f'DenseCRF: img must be uint8 in 0-255, got {img.dtype}; convert '
                            'with np.clip(img, 0, 255).round().astype(np.uint8)')
        if probs.shape[1:] != img.shape[:2]:
            raise ValueError(f'DenseCRF: probs (C, H, W) = {probs.shape} and img (H, W, 3) = '
                             f'{img.shape} must have the same H and W; resize the probabilities '
                             'to the image first')
        if not np.isfinite(probs).all():
            raise ValueError('DenseCRF: probs contains NaN or inf')
        if probs.dtype not in (np.float32, np.float64):
            probs = probs.astype(np.float32)
        return np.ascontiguousarray(probs), np.ascontiguousarray(img)

    def __call__(self, probs: ArrayLike, img: ArrayLike) -> np.ndarray:
        """Refine one image.

        Args:
            probs (np.ndarray | torch.Tensor): (C, H, W) probabilities (or non-negative scores:
                they are clipped to [1e-5, 1], not renormalised).
            img (np.ndarray | torch.Tensor): (H, W, 3) uint8 RGB image, same H and W.

        Returns:
            np.ndarray: (C, H, W) float32 marginals Q, summing to 1 over C.
        """
        probs, img = self.check_inputs(probs, img)
        return self._infer(probs, img)

    def _infer(self, probs: np.ndarray, img: np.ndarray) -> np.ndarray:
        """pydensecrf on already checked, contiguous arrays."""
        dcrf = _import_densecrf()
        num_classes, h, w = probs.shape
        crf = dcrf.DenseCRF2D(w, h, num_classes)
        crf.setUnaryEnergy(unary_from_probs(probs))
        crf.addPairwiseGaussian(sxy=self.gaussian_sxy / self.scale_factor,
                                compat=self.gaussian_compat)
        crf.addPairwiseBilateral(sxy=self.bilateral_sxy / self.scale_factor,
                                 srgb=self.bilateral_srgb, rgbim=img,
                                 compat=self.bilateral_compat)
        q = crf.inference(self.iterations)
        return np.asarray(q, dtype=np.float32).reshape(num_classes, h, w)

    def batch(self, probs: Sequence[ArrayLike], imgs: Sequence[ArrayLike]) -> List[np.ndarray]:
        """Refine several images, in a process pool when ``workers`` > 1.

        Every pair is validated here, in the calling process, before any work starts. Images
        may differ in size and in number of classes.

        Args:
            probs (Sequence[np.ndarray | torch.Tensor]): Per image (C, H, W) probabilities.
                A (N, C, H, W) array or tensor is accepted too.
            imgs (Sequence[np.ndarray | torch.Tensor]): Per image (H, W, 3) uint8 images, or a
                (N, H, W, 3) array.

        Returns:
            list[np.ndarray]: (C, H, W) float32 marginals, in input order.

        Raises:
            ValueError, TypeError: A bad input; the message names the image's index.
            CRFWorkerError: An image failed in, or killed, a pool worker (``.index``).
        """
        return self.submit(probs, imgs).result()

    def submit(self, probs: Sequence[ArrayLike], imgs: Sequence[ArrayLike]):
        """:meth:`batch` started in the pool, not waited for: the work overlaps what the
        caller does next; ``.result()`` (same results and errors as :meth:`batch`) collects
        it and ``.cancel()`` drops what has not started. Serial work (``workers`` <= 1, one
        image) runs in this process at ``.result()``. Inputs are checked here.
        """
        if len(probs) != len(imgs):
            raise ValueError(f'DenseCRF.batch: got {len(probs)} probability maps but '
                             f'{len(imgs)} images; pass one image per map')
        pairs = []
        for index, (p, i) in enumerate(zip(probs, imgs)):
            try:
                pairs.append(self.check_inputs(p, i))
            except (ValueError, TypeError) as e:
                raise type(e)(f'image {index} of the batch: {e}') from None
        if min(self.workers, len(pairs)) <= 1:
            return SerialTasks(self._infer, pairs)
        _import_densecrf()  # fail here with the install hint, not inside a worker
        # the pool has self.workers processes whatever this batch's size: it is kept for later
        return self._pool.submit(self._infer, pairs, self.workers,
                                 label='DenseCRF.batch: image')
