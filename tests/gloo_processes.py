# Copyright (c) mmaffseg contributors. All rights reserved.
"""Run a function in several CPU processes joined by a gloo process group (for DDP tests)."""
from typing import Any, Callable, List

import torch


def _worker(rank: int, world_size: int, fn: Callable[[int, int], Any], out_dir: str) -> None:
    import torch.distributed as torch_dist
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'file://{out_dir}/init', rank=rank,
                                  world_size=world_size)
    try:
        torch.save(fn(rank, world_size), f'{out_dir}/rank{rank}.pt')
    finally:
        torch_dist.destroy_process_group()


def run_in_gloo_processes(fn: Callable[[int, int], Any], out_dir, world_size: int = 2) -> List:
    """``fn(rank, world_size)`` in ``world_size`` processes of one gloo group; their results.

    The processes are forked, so they inherit the imported modules (spawn would re-import mmseg:
    ~10x slower) and ``fn`` may be a local function. Each result must be ``torch.save``-able.

    Args:
        fn (Callable): Run on every rank after ``init_process_group``.
        out_dir (str | Path): An empty directory (the rendezvous file and the results).
        world_size (int): Number of processes. Defaults to 2.

    Returns:
        list: The result of every rank, by rank.
    """
    import torch.multiprocessing as mp
    mp.start_processes(_worker, args=(world_size, fn, str(out_dir)), nprocs=world_size,
                       join=True, start_method='fork')
    return [torch.load(f'{out_dir}/rank{r}.pt') for r in range(world_size)]
