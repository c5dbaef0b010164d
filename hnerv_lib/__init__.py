"""hnerv_lib: HNeRV video representations that also predict CLIP embeddings.

The notebooks in ``notebooks/`` orchestrate; this package computes. Each concept has one module, in a
folder per role. A folder imports only from folders above it in this list (``tests/test_layers.py``
enforces it, and forbids function-local ``hnerv_lib`` imports that would hide a cycle):

``utils/``    io (atomic files, stable hashes), memory (peak tensor bytes, peak RSS), precision
              (``precision: auto``: a cached probe of this machine picks fp32 or bf16, channels-last)
``data/``     video (decode + frame cache), split (the ``X_Y_Z`` frame split), geometry (patch
              windows, centres, stitching), teacher (which open_clip model, built once),
              targets (CLIP targets of exactly each patch's pixels, cached)
``models/``   config, blocks, heads, full_frame (HNeRV / NeRV), patch, sizing, registry (presets,
              scaling), decoding (any model -> frames: the one decoder behind evaluation and the codec)
``eval/``     metrics (PSNR, SSIM, MS-SSIM, cosine), frames (per-frame scores of a reconstructor),
              patches (patch-model seams, overlapped and continuous decoding), clip_metrics (CLIP
              metrics that can fail: centred cosine, retrieval, baselines, block bootstrap),
              rate_distortion (bpp, BD-rate), search (text -> patches)
``codec/``    quantise, bitstream (one file that decodes the video), decode (frames, export, speed),
              baselines (x264 / x265 / SVT-AV1 / VP9 through PyAV), cli
``train/``    config (TrainConfig, presets, overrides), families (what a step computes per model
              family), losses, schedule, setup (frames, targets, task, model before step one), run
              (``Run``: the run directory and its files), trainer (``train(cfg, run_dir)``),
              checkpoint, sweep, cli
``studies/``  ablation (notebook 04), comparison (notebook 05), rate_distortion (notebook 07),
              tubelets/ (notebook 03: 2D patches vs 3D tubelets in a video ViT, with its own config,
              model, training and CLI)
``report/``   params (typed notebook parameters), runner (papermill), summary, figures

Entry modules at the top: ``bench`` (``python -m hnerv_lib.bench``), ``compress`` and ``action``
(``compress.py`` is the codec's CLI; ``action.py`` a ``python -m`` shim for studies/tubelets/cli.py).
"""

__version__ = "0.1.0"
