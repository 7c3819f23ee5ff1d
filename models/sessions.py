"""onnxruntime session options, set once per engine and shared by every network in a pack.

On a 2–4 core gate the thread count matters more than anything else: the capture and tracking
threads need a core, so the engine is usually given fewer intra-op threads than cores.
"""

from __future__ import annotations

from typing import Literal

import onnxruntime as ort

Optimisation = Literal["disable", "basic", "extended", "all"]

_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(threads: int = 0, optimisation: Optimisation = "all") -> ort.SessionOptions:
    """Options for every session of an engine: ``threads`` intra-op threads (0 = onnxruntime's
    choice, one per core), one inter-op thread, and the graph optimisation level."""
    if threads < 0:
        raise ValueError(f"threads must be 0 (automatic) or positive, got {threads}")
    if optimisation not in _LEVELS:
        raise ValueError(f"optimisation must be one of {', '.join(_LEVELS)}, got {optimisation!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _LEVELS[optimisation]
    options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
    # Spinning worker threads burn the cores the capture and tracking threads need; on two cores
    # MTCNN's many small runs took 90 ms a frame with spinning and 34 ms without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The arena keeps the largest buffers any input ever needed (a 4K enrollment photo) for the
    # life of the process; a gate has RAM to spare for neither, and allocation is not the cost.
    options.enable_cpu_mem_arena = False
    # Memory patterns are cached per input shape, and MTCNN's shapes change with every frame
    # (pyramid sizes, candidate counts): the cache only grows.
    options.enable_mem_pattern = False
    return options
