"""Benchmarks (never run by the tests): ``python tools/bench.py data|train|diagnose``.

data      phantom cohort + ``prepare`` of 40 patients at 224x224: wall time and peak memory
train     bare training loops (random tensors) in the four variants NCHW / channels_last x
          float32 / bf16 autocast, full-pipeline training img/s (cache → uint8 batches →
          augmentation → channels_last → step at the precision ``fit`` chooses, through Lightning),
          its ratio to the fastest bare loop (target ≥ 0.85), the input pipeline's share of a step;
          the same for inference (``predict_probs`` against the fastest bare inference loop)
diagnose  ``diagnose`` of one phantom patient: warm (in-process, target ≤ 2 s), as a fresh
          process (target ≤ 6 s), and its inference img/s against the fastest bare inference
          loop (target ≥ 0.85); the extra warm time of ``diagnose --explain --html`` (target
          ≤ 3 s on 2 cores) and the page's size (target ≤ 3 MB)
segment   ``segment fit`` on the 60-patient phantom (≤ 15 min, test Dice), and ``segment`` +
          ``diagnose`` of one patient from its three series (warm ≤ 5 s, fresh ≤ 15 s);
          see tools/bench_segment.py

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

from mrparotid.runtime import tune_malloc

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
    """Full-pipeline training (and inference) against the fastest of the four bare loops."""
    import pytorch_lightning as pl
    import torch

    from bench_loops import inference_rates, report, training_rates
    from mrparotid.config import load_config
    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.inference.predict import predict_probs
    from mrparotid.models.checkpoint import checkpoint_meta
    from mrparotid.models.factory import build_classifier
    from mrparotid.models.lit_module import SliceClassifier
    from mrparotid.models.precision import resolve_precision
    from mrparotid.training.fit import trainer_kwargs
    from mrparotid.training.run_dir import quiet_lightning

    quiet_lightning()
    cfg = load_config(None, ["--data.image_size", str(size), "--data.batch_size", str(batch)])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n_ch = len(cfg["data"]["channels"])
    precision, why = resolve_precision(cfg["trainer"]["precision"], device)
    print(f"device {device} ({torch.get_num_threads()} threads), crops {size}x{size}, batch {batch}, "
          f"{steps} timed steps; pipeline precision {precision} ({why}), channels_last")

    def build():
        return build_classifier(cfg["model"], n_ch)

    bare = training_rates(build, (batch, n_ch, size, size), device, steps)
    best, best_rate = report("training", bare)

    dm = ParotidDataModule(cfg, _cohort(40), progress=False)
    dm.setup("fit")
    split = input_breakdown(dm, steps)

    # full pipeline through Lightning: cached uint8 crops -> loader -> float, augmentation,
    # channels_last -> step at the precision fit chooses
    torch.manual_seed(0)
    timer = _StepTimer(warmup=2)
    module = SliceClassifier(cfg["model"], cfg["optim"], cfg["data"]["channels"], 10, None,
                             checkpoint_meta(cfg, True))
    trainer = pl.Trainer(max_epochs=100, max_steps=steps + 2, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer], accelerator=device,
                         precision=trainer_kwargs(cfg, cuda=device == "cuda")["precision"])
    trainer.fit(module, datamodule=dm)
    pipeline = timer.images / timer.seconds
    outside = (split["load"] + split["transfer"]) * pipeline / batch
    print(f"full-pipeline training: {pipeline:8.1f} img/s (cache + augmentation + step, Lightning, {precision})")
    print(f"ratio to the fastest bare loop ({best[0]}, {best[1]}): {pipeline / best_rate:6.3f} "
          "(target >= 0.85)")
    print(f"input pipeline per batch: load {split['load'] * 1e3:.1f} ms, uint8->float+layout "
          f"{(split['transfer'] - split['augment']) * 1e3:.1f} ms, augmentation {split['augment'] * 1e3:.1f} ms "
          f"= {outside:.1%} of a pipeline step outside the model")

    infer_batch = 64
    bare_inf = inference_rates(build, (infer_batch, n_ch, size, size), device, max(2, steps // 2))
    best_inf, best_inf_rate = report("inference", bare_inf)
    x = dm.data["train"].x[:infer_batch * 6]
    model = module.model
    predict_probs(model, x[:infer_batch], batch_size=infer_batch, device=device)      # warm-up
    rates = []
    for _ in range(3):                       # the median of three, as the bare loops average two
        t0 = time.perf_counter()
        predict_probs(model, x, batch_size=infer_batch, device=device)
        rates.append(len(x) / (time.perf_counter() - t0))
    infer = sorted(rates)[1]
    print(f"pipeline inference (predict_probs, uint8 crops, auto): {infer:8.1f} img/s; ratio to the "
          f"fastest bare loop ({best_inf[0]}, {best_inf[1]}): {infer / best_inf_rate:6.3f} (target >= 0.85)")


def input_breakdown(dm, steps: int) -> dict[str, float]:
    """Seconds per training batch spent loading (fetch + collate), in the transfer hook (uint8 ->
    float, augmentation, channels_last) and, within it, in the augmentation alone."""
    from types import SimpleNamespace

    loader = iter(dm.train_dataloader())
    dm.trainer = SimpleNamespace(training=True)
    total = {"load": 0.0, "transfer": 0.0, "augment": 0.0}
    n = 0
    for i in range(steps + 1):
        t0 = time.perf_counter()
        batch = next(loader, None)
        if batch is None:
            break
        t1 = time.perf_counter()
        dm.on_after_batch_transfer(batch, 0)
        t2 = time.perf_counter()
        x = batch[0].float().div_(255.0)
        t3 = time.perf_counter()
        dm.augment.train()(x)
        t4 = time.perf_counter()
        if i:                                   # the first batch warms up
            total["load"] += t1 - t0
            total["transfer"] += t2 - t1
            total["augment"] += t4 - t3
            n += 1
    dm.trainer = None
    return {k: v / max(n, 1) for k, v in total.items()}


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
    times, inference = [], _InferenceClock()
    with inference:
        for _ in range(3):
            t0 = time.perf_counter()
            report = diagnose_case(case, loaded)
            times.append(time.perf_counter() - t0)
    fresh = [child("diagnose-fresh", str(case.patient_dir), str(ckpt))["seconds"] for _ in range(2)]
    size = int(loaded.meta["preprocess"]["image_size"])
    print(f"SYNTHETIC phantom patient {case.patient_id}: {len(report['slices'])} slices, {size}x{size}")
    print(f"diagnose warm (in-process, median of 3): {sorted(times)[1]:.2f} s (target <= 2 s)")
    print(f"diagnose fresh process (best of 2):      {min(fresh):.2f} s (target <= 6 s)")
    _compare_inference(loaded, inference, size)
    _bench_explain(case.patient_dir, ckpt)


def _bench_explain(patient_dir: Path, ckpt: Path) -> None:
    """Extra warm time of ``diagnose --explain --html`` over plain ``diagnose`` (in-process CLI,
    median of 3 each, interleaved; target <= 3 s on 2 cores), and the page's size (target <= 3 MB)."""
    import torch

    from mrparotid.cli.main import main

    out = WORK / "diag-html"
    plain = ["diagnose", str(patient_dir), "--checkpoint", str(ckpt), "-q"]
    explained = plain + ["--explain", "--html", str(out), "--overwrite"]
    main(explained)                                     # warm: imports (captum, jinja2), fonts
    times: dict[str, list[float]] = {"plain": [], "explain": []}
    for _ in range(3):
        for name, argv in (("plain", plain), ("explain", explained)):
            t0 = time.perf_counter()
            assert main(argv) == 0
            times[name].append(time.perf_counter() - t0)
    extra = sorted(times["explain"])[1] - sorted(times["plain"])[1]
    page = max(out.glob("*.html"), key=lambda p: p.stat().st_size)
    print(f"diagnose --explain --html extra (warm, median of 3, {torch.get_num_threads()} threads): "
          f"{extra:.2f} s (target <= 3 s on 2 cores)")
    print(f"report page {page.name}: {page.stat().st_size / 2**20:.2f} MiB (target <= 3 MB)")


class _InferenceClock:
    """Times every ``predict_probs`` call that diagnose makes (images and seconds) while active."""

    def __enter__(self):
        import importlib

        import mrparotid.inference.predict as predict

        self.images, self.seconds, self.batch, self.patched = 0, 0.0, 0, []
        real = predict.predict_probs

        def timed(model, x, **kw):
            t0 = time.perf_counter()
            out = real(model, x, **kw)
            self.seconds += time.perf_counter() - t0
            self.images += len(x)
            self.batch = max(self.batch, min(len(x), kw.get("batch_size", 64)))
            return out
        for name in ("mrparotid.inference.procedure", "mrparotid.inference.diagnose"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if getattr(module, "predict_probs", None) is real:   # diagnose's inference calls
                self.patched.append(module)
                module.predict_probs = timed
        self.real = real
        return self

    def __exit__(self, *exc):
        for module in self.patched:
            module.predict_probs = self.real


def _compare_inference(loaded, clock: _InferenceClock, size: int) -> None:
    """diagnose's inference images/s against the fastest of the four bare inference loops."""
    import torch

    from bench_loops import inference_rates, report
    from mrparotid.models.factory import build_classifier

    if not clock.images:
        print("diagnose inference: not timed (predict_probs was not called by name)")
        return
    rate = clock.images / clock.seconds
    n_in = next(m for m in loaded.model.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    bare = inference_rates(lambda: build_classifier(loaded.meta["model"], n_in),
                           (clock.batch, n_in, size, size), "cpu", steps=4)
    best, best_rate = report(f"inference at batch {clock.batch}", bare)
    print(f"diagnose inference (predict_probs, auto): {rate:8.1f} img/s; ratio to the fastest bare "
          f"loop ({best[0]}, {best[1]}): {rate / best_rate:6.3f} (target >= 0.85)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_stage":
        tune_malloc()
        stage(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["data", "train", "diagnose", "segment"])
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    print(tune_malloc())     # as in the CLI, so the bare loops and the pipeline run alike
    WORK.mkdir(parents=True, exist_ok=True)
    if a.what == "data":
        bench_data(a.patients, a.size)
    elif a.what == "train":
        bench_train(a.size, a.batch, a.steps)
    elif a.what == "segment":    # tools/bench_segment.py: segment fit, segment + diagnose (issue 10)
        from bench_segment import bench_segment

        bench_segment(WORK)
    else:
        bench_diagnose()


if __name__ == "__main__":
    main()
