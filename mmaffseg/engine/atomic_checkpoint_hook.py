# Copyright (c) mmaffseg contributors. All rights reserved.
"""A CheckpointHook whose files are complete or absent, whenever the process is killed.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` with ``open(path, 'wb')`` and then the
``last_checkpoint`` pointer with ``open(path, 'w')``; a kill during either write leaves a
truncated checkpoint or an empty pointer, and ``--resume`` then fails. With a local ``out_dir``
:class:`AtomicCheckpointHook` writes both through :func:`mmaffseg.utils.atomic_write_bytes`
(temporary file, fsync, rename), and removes the oldest checkpoint (``max_keep_ckpts``) only
after the new one is complete. Remote ``out_dir`` backends are left to mmengine.

Before the first iteration it checks that the folder has room for one checkpoint
(:func:`checkpoint_size_estimate`); a disk that fills up later stops training with one line
naming the folder and its free space (an :class:`~mmaffseg.utils.OutputDirError`), the previous
checkpoint and ``last_checkpoint`` intact.
"""
import os.path as osp
from typing import Union

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..utils.atomic_io import atomic_write_bytes
from ..utils.output_folder import DISK_FULL_ERRNOS, check_output_folder, disk_full_error

ATOMIC_BACKEND = 'mmaffseg_atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, 'osp.PathLike']) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath: Union[str, 'osp.PathLike'],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(str(filepath), obj.encode(encoding))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def checkpoint_size_estimate(model: torch.nn.Module, save_optimizer: bool = True) -> int:
    """Bytes of a training checkpoint of ``model``, from above: its state (weights and buffers)
    and, with the optimizer, two values per trained weight (Adam's moments; SGD keeps one)."""
    model = model.module if is_model_wrapper(model) else model
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values()
                if isinstance(t, torch.Tensor))
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return state + (2 * trained if save_optimizer else 0)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """Drop-in for ``CheckpointHook`` (same arguments) with atomic local writes.

    mmaffseg's ``tools/train.py`` uses it in place of ``CheckpointHook``.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._atomic = (self.file_client_args is None
                        and type(self.file_backend) is LocalBackend)
        if self._atomic:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
            self.file_backend = AtomicLocalBackend()
            if is_main_process():
                check_output_folder(
                    self.out_dir, self._argument(runner),
                    checkpoint_size_estimate(runner.model, self.save_optimizer),
                    needed_for='one checkpoint (weights and optimizer state)')

    def _argument(self, runner) -> str:
        """The setting that names the checkpoint folder, for messages."""
        return ('--work-dir' if osp.abspath(self.out_dir) == osp.abspath(runner.work_dir) else
                'default_hooks.checkpoint.out_dir')

    def _remove_checkpoint(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed writes folders
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not getattr(self, '_atomic', False):
            return super()._save_checkpoint_with_step(runner, step, meta)
        # mmengine's bookkeeping (keep_ckpt_ids, last_ckpt, both saved in the checkpoint's
        # message hub), in a safer order: the oldest checkpoint goes only once the new one and
        # the pointer to it are complete
        oldest = None
        if self.max_keep_ckpts > 0 and (not self.keep_ckpt_ids
                                        or self.keep_ckpt_ids[-1] != step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                oldest = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, filename, None, save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if is_main_process():
                atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'),
                                   str(self.last_ckpt).encode())
        except OSError as e:
            if e.errno not in DISK_FULL_ERRNOS:
                raise
            raise disk_full_error(
                self.out_dir, filename, 'nothing was lost: the earlier checkpoints and '
                'last_checkpoint are as they were. Free some space and continue with '
                'tools/train.py --resume') from None
        if not is_main_process():
            return
        if oldest is not None:
            self._remove_checkpoint(oldest)
