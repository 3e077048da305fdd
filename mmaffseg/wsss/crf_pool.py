# Copyright (c) mmaffseg contributors. All rights reserved.
"""The dense CRFs of a pseudo-label run: how many processes per rank, and their work overlapped
with the next images' network passes.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018 (the dCRF of the affinity labels and of the walked
scores); Kraehenbuehl & Koltun, NeurIPS 2011 (the dense CRF, :class:`DenseCRF`).

pydensecrf runs on one CPU core per image (about a second for a VOC image, growing with the
pixels). Once the networks run on a GPU, the CRFs decide a run's throughput, so
:class:`~mmaffseg.wsss.PseudoLabelLoop`

* sizes the pool of each rank from the cores it may use (:func:`crf_workers_per_rank`: the
  process's CPU affinity divided among the ranks of this machine, less one core for the rank
  itself when its networks run on a GPU), and
* runs the images in chunks (:func:`default_chunk_size`), submitting the CRFs of a chunk to the
  pool and collecting them after the network passes of the next chunk
  (:func:`run_chunks`, :func:`submit_batch_crf`), so the pool and the network work at the same
  time. Outputs, their order in the lists and the per-image error handling are those of the
  serial order (chunk by chunk).
"""
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

import numpy as np
import torch

from mmaffseg.postprocessing.worker_pool import cpus_per_rank
from mmaffseg.utils.config_errors import ConfigCheckError

#: The smallest default chunk (images whose CRFs are submitted together).
MIN_CHUNK_SIZE = 4

Chunk = TypeVar('Chunk')
Done = TypeVar('Done')


def crf_workers_per_rank(device: Union[str, torch.device, None] = None) -> int:
    """``crf.workers='auto'`` of a pseudo-label run: the CPU cores of this rank
    (:func:`~mmaffseg.postprocessing.worker_pool.cpus_per_rank`: the affinity mask's cores
    divided by ``LOCAL_WORLD_SIZE``), less one for the rank's own process when ``device`` is a
    GPU (it feeds the GPU and writes the outputs); at least 1 (serial).

    Args:
        device (str | torch.device, optional): Where the rank's networks run. Default: CPU.

    Returns:
        int: CRF worker processes for this rank.
    """
    cores = cpus_per_rank()
    on_gpu = device is not None and torch.device(device).type != 'cpu'
    return max(1, cores - 1) if on_gpu else cores


def crf_args_for_rank(crf_args: dict, device: Union[str, torch.device, None] = None) -> dict:
    """:class:`DenseCRF` arguments with ``workers='auto'`` resolved by
    :func:`crf_workers_per_rank` for ``device``.

    Raises:
        ConfigCheckError: ``workers`` is not ``'auto'`` nor an integer >= 0 (one line naming
            ``test_cfg.crf.workers``).
    """
    workers = crf_args.get('workers')
    if workers not in (None, 'auto') and (isinstance(workers, bool) or not isinstance(workers, int)
                              or workers < 0):
        raise ConfigCheckError(f"test_cfg.crf.workers must be 'auto' or an integer >= 0 (0: "
                               f'serial, in the rank\'s own process), got {workers!r}')
    if workers != 'auto':
        return crf_args
    return dict(crf_args, workers=crf_workers_per_rank(device))


def default_chunk_size(workers: int) -> int:
    """Images per chunk when ``chunk_size`` is not given: one per CRF worker, at least
    :data:`MIN_CHUNK_SIZE` (two chunks are in memory while they overlap)."""
    return max(MIN_CHUNK_SIZE, int(workers))


def resolve_chunk_size(chunk_size: Optional[int], workers: int) -> int:
    """``test_cfg.chunk_size`` checked (an integer >= 1), or :func:`default_chunk_size`."""
    if chunk_size is None:
        return default_chunk_size(workers)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigCheckError(f'test_cfg.chunk_size must be an integer >= 1 or None, got '
                               f'{chunk_size!r}')
    return chunk_size


def resolve_overlap(overlap: Union[bool, str], device: Union[str, torch.device, None]) -> bool:
    """``test_cfg.overlap_crf`` checked; ``'auto'`` is True when ``device`` is a GPU (on a CPU
    the network and the CRF workers would share the cores)."""
    if not (isinstance(overlap, bool) or overlap == 'auto'):
        raise ConfigCheckError(f"test_cfg.overlap_crf must be True, False or 'auto', got "
                               f'{overlap!r}')
    if overlap == 'auto':
        return device is not None and torch.device(device).type != 'cpu'
    return overlap


class PendingCRF:
    """The dense CRFs of several images' unaries, submitted to the pool
    (:func:`submit_batch_crf`); :meth:`result` collects them.

    Args:
        jobs (list[tuple[int, str]]): ``(image, unary name)`` of each CRF, in order.
        num_images (int): How many images.
        pending: What :meth:`DenseCRF.submit` returned (None without jobs or after an error).
        error (Exception, optional): The error :meth:`DenseCRF.submit` raised.
    """

    def __init__(self, jobs: List[Tuple[int, str]], num_images: int, pending=None,
                 error: Optional[Exception] = None) -> None:
        self.jobs, self.num_images, self.pending, self.error = jobs, num_images, pending, error

    def result(self, fallback: bool = True) -> List[Optional[Dict[str, np.ndarray]]]:
        """Per image ``{name: refined probabilities}``.

        Args:
            fallback (bool): On an error, return None for every image (the caller then
                refines them one by one to find the bad one) instead of raising.
                Default: True.
        """
        refined: List[Optional[Dict[str, np.ndarray]]] = [{} for _ in range(self.num_images)]
        if not self.jobs:
            return refined
        try:
            if self.error is not None:
                raise self.error
            outputs = self.pending.result()
        except Exception:  # noqa: BLE001 - any error of any image: the caller retries one by one
            if not fallback:
                raise
            return [None] * self.num_images
        for (i, name), q in zip(self.jobs, outputs):
            refined[i][name] = q
        return refined

    def cancel(self) -> None:
        """Drop the CRFs not started yet."""
        if self.pending is not None:
            self.pending.cancel()


def submit_batch_crf(crf, unaries: List[Dict[str, np.ndarray]],
                     images: List[np.ndarray]) -> PendingCRF:
    """Submit the dense CRFs of several images' unaries as one :meth:`DenseCRF.submit`.

    Args:
        crf (DenseCRF): The dense CRF.
        unaries (list[dict]): Per image, ``{name: (C, H, W) probabilities}`` (may be empty).
        images (list[np.ndarray]): Per image, its ``(H, W, 3)`` uint8 RGB array.

    Returns:
        PendingCRF: The running CRFs (an input error is raised by its ``result``).
    """
    jobs = [(i, name) for i, image_unaries in enumerate(unaries) for name in image_unaries]
    if not jobs:
        return PendingCRF(jobs, len(unaries))
    try:
        pending = crf.submit([unaries[i][name] for i, name in jobs],
                             [images[i] for i, _ in jobs])
    except Exception as e:  # noqa: BLE001 - raised by result(), as DenseCRF.batch would
        return PendingCRF(jobs, len(unaries), error=e)
    return PendingCRF(jobs, len(unaries), pending)


def run_chunks(chunks: Iterable[Chunk], model_pass: Callable[[Chunk], Done],
               submit: Callable[[Done], PendingCRF],
               finish: Callable[[Done, PendingCRF], None], overlap: bool = True) -> None:
    """For every chunk: its network passes, then its CRFs submitted, then collected.

    With ``overlap`` the CRFs of chunk i are collected (``finish``) after the network passes
    of chunk i + 1, so the pool refines chunk i while the network runs chunk i + 1; without,
    each chunk is finished before the next starts. An exception cancels the CRFs not started.

    Args:
        chunks (Iterable): The chunks, in order.
        model_pass (Callable): ``chunk -> done``, the network passes of a chunk.
        submit (Callable): ``done -> PendingCRF``, its CRFs submitted.
        finish (Callable): ``(done, pending) -> None``, its CRFs collected and written.
        overlap (bool): Overlap the CRFs of a chunk with the next chunk's passes.
            Default: True.
    """
    pending: Optional[Tuple[Done, PendingCRF]] = None
    try:
        for chunk in chunks:
            done = model_pass(chunk)
            if pending is not None:
                previous, pending = pending, None
                finish(*previous)
            pending = (done, submit(done))
            if not overlap:
                current, pending = pending, None
                finish(*current)
        if pending is not None:
            last, pending = pending, None
            finish(*last)
    except BaseException:
        if pending is not None:
            pending[1].cancel()
        raise

