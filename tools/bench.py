"""Benchmarks (never run by the tests): ``python tools/bench.py data|train|diagnose``.

data      phantom cohort + ``prepare`` of 40 patients at 224x224: wall time and peak memory
train     model-only training img/s (random tensors), full-pipeline training img/s (cache →
          uint8 batches → augmentation → step, through Lightning), their ratio (target ≥ 0.95),
          inference img/s
diagnose  ``diagnose`` of one phantom patient: warm (in-process, target ≤ 2 s) and as a fresh
          process (target ≤ 6 s)

Every figure is on SYNTHETIC phantom data and this machine's CPU (or GPU if present).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(os.environ.get("MRPAROTID_BENCH_DIR", Path(tempfile.gettempdir()) / "mrparotid-bench"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(stage: str, *args: str) -> dict:
    """Run one stage in a fresh process; it reports its wall time and peak RSS as JSON."""
    out = subprocess.run([sys.executable, __file__, "_stage", stage, *args], capture_output=True,
                         text=True, check=False)
    if out.returncode:
        sys.exit(f"bench stage {stage} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stage(name: str, args: list[str]) -> None:
    t0 = time.perf_counter()
    if name == "phantom":
        from mrparotid.data.phantom import make_cohort

        make_cohort(args[0], int(args[1]), seed=0, progress=False)
    elif name == "prepare":
        from mrparotid.data.cache import prepare_cohort
        from mrparotid.config import load_config
        from mrparotid.io.manifest import read_manifest

        cfg = load_config(None, ["--data.image_size", args[1], "--data.cache_dir", args[2]])
        prepare_cohort(read_manifest(args[0]), cfg, progress=False)
    elif name == "diagnose-fresh":
        code = subprocess.call([sys.executable, "-m", "mrparotid", "diagnose", args[0], "--checkpoint",
                                args[1], "-q"])
        assert code == 0
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}))


def bench_data(n: int, size: int) -> None:
    root = WORK / f"data-{n}"
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    ph = child("phantom", str(root), str(n))
    cache = root / "cache"
    cold = child("prepare", str(root / "manifest.csv"), str(size), str(cache))
    warm = child("prepare", str(root / "manifest.csv"), str(size), str(cache))
    print(f"SYNTHETIC phantom cohort, {n} patients, crops {size}x{size}")
    print(f"phantom:        {ph['seconds']:7.1f} s   peak RSS {ph['peak_rss_mb']:7.0f} MB")
    print(f"prepare (cold): {cold['seconds']:7.1f} s   peak RSS {cold['peak_rss_mb']:7.0f} MB   "
          f"({cold['seconds'] / n:.2f} s/patient)")
    print(f"prepare (warm): {warm['seconds']:7.1f} s   peak RSS {warm['peak_rss_mb']:7.0f} MB   (all cached)")
    size_mb = sum(f.stat().st_size for f in cache.glob("*.npz")) / 2**20
    print(f"cache on disk:  {size_mb:7.1f} MB")


def _cohort(n: int) -> Path:
    manifest = WORK / f"cohort-{n}" / "manifest.csv"
    if not manifest.exists():
        from mrparotid.data.phantom import make_cohort

        make_cohort(manifest.parent, n, seed=0, progress=False)
    return manifest


def bench_train(size: int, batch: int, steps: int) -> None:
    import pytorch_lightning as pl
    import torch

    from mrparotid.config import load_config
    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.models.lit_module import SliceClassifier
    from mrparotid.models.checkpoint import checkpoint_meta

    torch.manual_seed(0)
    cfg = load_config(None, ["--data.image_size", str(size), "--data.batch_size", str(batch)])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = SliceClassifier(cfg["model"], cfg["optim"], cfg["data"]["channels"], 10, None,
                             checkpoint_meta(cfg, True))

    # model only: random tensors already on the device
    model = module.model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, len(cfg["data"]["channels"]), size, size, device=device)
    y = torch.randint(0, 4, (batch,), device=device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def model_only_rate() -> float:
        for _ in range(2):
            step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        return steps * batch / (time.perf_counter() - t0)

    before = model_only_rate()

    # full pipeline through Lightning: cached uint8 crops → loader → augmentation → step
    dm = ParotidDataModule(cfg, _cohort(40), progress=False)
    dm.setup("fit")
    timer = _StepTimer(warmup=2)
    module = SliceClassifier(cfg["model"], cfg["optim"], cfg["data"]["channels"], 10, None,
                             checkpoint_meta(cfg, True))
    trainer = pl.Trainer(max_epochs=100, max_steps=steps + 2, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer], accelerator=device)
    trainer.fit(module, datamodule=dm)
    pipeline = timer.images / timer.seconds
    model_only = (before + model_only_rate()) / 2   # measured before and after: drift cancels

    # inference
    model = module.model.to(device).eval()
    with torch.inference_mode():
        xb = torch.rand(64, x.shape[1], size, size, device=device)
        model(xb)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            model(xb)
        _sync(device)
        infer = 3 * 64 / (time.perf_counter() - t0)
    print(f"device {device} ({torch.get_num_threads()} threads), crops {size}x{size}, batch {batch}, "
          f"{steps} timed steps")
    print(f"model-only training:    {model_only:8.1f} img/s (mean of runs before and after)")
    print(f"full-pipeline training: {pipeline:8.1f} img/s (cache + augmentation + step, Lightning)")
    print(f"ratio:                  {pipeline / model_only:8.3f} (target >= 0.95)")
    print(f"inference:              {infer:8.1f} img/s")


class _StepTimer:
    """Lightning callback: wall time from batch start to end of each step after ``warmup``,
    including data loading (time between steps is counted too)."""

    def __new__(cls, warmup: int):
        import pytorch_lightning as pl

        class Timer(pl.Callback):
            def __init__(self):
                self.n, self.images, self.seconds, self.t = 0, 0, 0.0, None

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                import torch

                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                now = time.perf_counter()
                if self.n >= warmup and self.t is not None:
                    self.seconds += now - self.t
                    self.images += len(batch[1])
                self.t = now
                self.n += 1

        return Timer()


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def bench_diagnose() -> None:
    from mrparotid.config import load_config
    from mrparotid.inference.diagnose import diagnose_case
    from mrparotid.io.manifest import read_manifest
    from mrparotid.models.checkpoint import load_checkpoint
    from mrparotid.training.fit import fit

    manifest = _cohort(12)
    ckpt = WORK / "diag-run" / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        cfg = load_config(None, ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                                 "--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu"])
        fit(cfg, manifest=manifest, out_dir=WORK / "diag-run", progress=False, evaluate=False,
            overwrite=True)
    case = read_manifest(manifest).cases[0]
    loaded = load_checkpoint(ckpt)
    diagnose_case(case, loaded)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        report = diagnose_case(case, loaded)
        times.append(time.perf_counter() - t0)
    fresh = [child("diagnose-fresh", str(case.patient_dir), str(ckpt))["seconds"] for _ in range(2)]
    print(f"SYNTHETIC phantom patient {case.patient_id}: {len(report['slices'])} slices, 224x224")
    print(f"diagnose warm (in-process, median of 3): {sorted(times)[1]:.2f} s (target <= 2 s)")
    print(f"diagnose fresh process (best of 2):      {min(fresh):.2f} s (target <= 6 s)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_stage":
        stage(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["data", "train", "diagnose"])
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if a.what == "data":
        bench_data(a.patients, a.size)
    elif a.what == "train":
        bench_train(a.size, a.batch, a.steps)
    else:
        bench_diagnose()


if __name__ == "__main__":
    main()
