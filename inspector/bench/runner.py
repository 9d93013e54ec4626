"""The end-to-end benchmark: Inspector's pipeline beside ultralytics, size by size.

For every image size and model, in one run on one machine, each in its own process:
the ultralytics baseline (predict with retina masks, then its prompt step), the network
alone (the network-only rate), and the whole pipeline on the folder (stages, throughput,
peak memory, cold start). Optionally the ONNX export (speed and mask agreement) and a long
run for memory drift. The ratios the targets are stated in are computed here.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.bench.dataset import SIZES, bench_set
from inspector.errors import InspectorError

# The thread count every measurement runs with, whatever was imported before: ultralytics
# sets OMP_NUM_THREADS=1 in its process's environment on import, which child processes
# would inherit, and a fresh ultralytics process would take for itself.
THREADS = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count() or 1)

# Stages of the pipeline that are not the network: the "around the network" cost.
AROUND = ("read", "select", "rules", "classify", "outline")


@dataclass(frozen=True)
class Model:
    name: str
    weights: str  # what the recipe names
    note: str = ""
    conf: float | None = None  # instead of the demo recipe's


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def run_child(mode: str, recipe: Path, images: Path, *, device: str, backend: str = "torch", **extra) -> dict:
    """One measurement in a fresh Python process; its last output line is the JSON result."""
    command = [sys.executable, "-m", "inspector.bench.child", mode, "--recipe", str(recipe), "--images", str(images)]
    command += ["--device", device, "--backend", backend, "--spawned-at", repr(time.time())]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": THREADS}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise InspectorError(f"benchmark step {mode} on {images} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merged(rounds: list[dict]) -> dict:
    """One measurement repeated in several rounds, as one: per-image samples pooled,
    per-run figures as their median (throughput, per-image means) or worst (peak memory)."""
    if len(rounds) == 1:
        return rounds[0]
    out = dict(rounds[-1])
    for key in {k: None for r in rounds for k in r}:
        values = [r[key] for r in rounds if r.get(key) is not None]
        if not values:
            continue
        value = values[0]
        if key == "peak_rss_mb":
            out[key] = max(values)
        elif key == "verdicts":  # counts of every round's images
            out[key] = dict(sum((Counter(counts) for counts in values), Counter()))
        elif key == "cold_start_s":
            out[key], out["cold_start_range_s"] = statistics.median(values), [min(values), max(values)]
        elif key == "cold_start_phases_s":  # each step's median
            out[key] = {step: statistics.median(v[step] for v in values if step in v) for step in value}
        elif isinstance(value, list) and key != "rss_mb":
            out[key] = [v for r in values for v in r]
        elif isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
            out[key] = {k: [v for r in values for v in r.get(k, [])] for k in value}
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(values)
    return out


def network_rate(network: dict) -> float:
    """Images per second of forward passes back to back, on every worker at once."""
    return network.get("workers", 1) * 1e3 / statistics.mean(network["stages_ms"]["inference"])


def summarise(pipeline: dict, network: dict, baseline: dict, network_workers: dict | None = None) -> dict:
    """Per-image stage percentiles and the ratios of the targets, for one size and model.

    "Around the network" is given twice: with the wall time of reading and storing,
    which on a machine with few cores also counts waiting while the network holds them,
    and with their threads' CPU time, which is what they cost. Both are against the
    forward pass as it ran in the pipeline (with several workers, on each one's share of
    the cores), and the CPU time also against the network alone one image at a time.
    The throughput is set against the network alone one image at a time (the network-only
    rate) and, where the pipeline inspects several images at once, against the network
    alone on as many workers (``network_workers``).
    """
    verdicts = pipeline.get("verdicts", {})
    if verdicts and not any(n for verdict, n in verdicts.items() if verdict != "ERROR"):
        raise InspectorError(f"every image was an ERROR in the pipeline (verdicts: {verdicts}); nothing to compare")
    if not pipeline.get("throughput_ips"):
        raise InspectorError(f"no rate: the results of {pipeline['images']} images came all at once; use more --images")
    stages = {name: percentiles(values) for name, values in pipeline["stages_ms"].items()}
    stages["store"] = {"p50": pipeline["store_ms_per_image"], "p95": pipeline["store_ms_per_image"]}
    forward = stages["inference"]["p50"]
    inline = sum(stages[s]["p50"] for s in AROUND if s in stages and s != "read")
    around = inline + stages["read"]["p50"] + stages["store"]["p50"]
    cpu = {"read": pipeline.get("read_cpu_ms_per_image"), "store": pipeline.get("store_cpu_ms_per_image")}
    around_cpu = inline + cpu["read"] + cpu["store"] if None not in cpu.values() else None
    network_forward = network["stages_ms"]["inference"]
    network_forward_p50 = percentiles(network_forward)["p50"]
    rate = network_rate(network)
    rate_workers = network_rate(network_workers) if network_workers else None
    baseline_total = percentiles(baseline["stages_ms"]["total"])
    per_image = 1e3 / pipeline["throughput_ips"]
    return {
        "images": pipeline["images"],
        "backend": pipeline["backend"],
        "workers": pipeline.get("workers", 1),
        "register_ahead": pipeline.get("register_ahead"),
        "pipeline_stages_ms": stages,
        "pipeline_cpu_ms_per_image": cpu,
        "pipeline_total_ms": percentiles(pipeline["totals_ms"]),
        "pipeline_wall_ms_per_image": per_image,
        "throughput_ips": pipeline["throughput_ips"],
        "network_only": {
            "forward_ms": percentiles(network_forward),
            "segment_ms": percentiles(network["totals_ms"]),
            "rate_ips": rate,
        },
        "network_workers": None
        if network_workers is None
        else {
            "workers": network_workers["workers"],
            "forward_ms": percentiles(network_workers["stages_ms"]["inference"]),
            "rate_ips": rate_workers,
        },
        "baseline_ms": {k: percentiles(v) for k, v in baseline["stages_ms"].items()},
        "baseline_masks_per_image": baseline["masks_per_image"],
        "peak_rss_mb": {"pipeline": pipeline["peak_rss_mb"], "baseline": baseline["peak_rss_mb"]},
        "cold_start_s": pipeline["cold_start_s"],
        "cold_start_range_s": pipeline.get("cold_start_range_s"),
        "cold_start_phases_s": pipeline.get("cold_start_phases_s"),
        "ratios": {
            "around_network_to_forward": around / forward if forward else None,
            "around_network_cpu_to_forward": around_cpu / forward if forward and around_cpu is not None else None,
            "around_network_cpu_to_network_forward": around_cpu / network_forward_p50
            if network_forward_p50 and around_cpu is not None
            else None,
            "throughput_to_network_rate": pipeline["throughput_ips"] / rate,
            "throughput_to_network_workers_rate": pipeline["throughput_ips"] / rate_workers if rate_workers else None,
            "baseline_to_pipeline": baseline_total["p50"] / per_image,
        },
    }


def drift(samples: list[tuple[int, float]]) -> dict:
    """Memory growth over a long run, after the first tenth (warm-up, caches filling)."""
    if len(samples) < 3:
        return {"drift_mb": None, "samples": samples}
    n_last = samples[-1][0]
    settled = next(rss for n, rss in samples if n >= 0.1 * n_last)
    return {"drift_mb": samples[-1][1] - settled, "from_image": 0.1 * n_last, "samples": samples}


def benchmark(
    work: Path,
    *,
    sizes: list[str],
    images: int,
    models: list[Model],
    device: str = "cpu",
    onnx: bool = False,
    long_run: int = 0,
    rounds: int = 1,
    register_ahead: int | None = None,
    workers: int | None = None,
    say: Callable[[str], None] = print,
) -> dict:
    """Run everything; returns the JSON-able results.

    With ``rounds`` above 1 the baseline, the network alone and the pipeline take turns
    that many times, so that a slow spell of a shared machine falls on all of them.
    ``register_ahead`` sets the pipeline's registration threads and ``workers`` the
    images it inspects at once (None: its own choice). Where the pipeline inspects
    several images at once, the network alone is also measured on as many workers.
    """
    from inspector.engine.segmenter import describe_device

    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "device": describe_device(device),
            "torch_threads": int(THREADS),
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "images_per_size": images,
        "rounds": rounds,
        "sizes": {name: list(SIZES[name]) for name in sizes},
        "models": {m.name: m.note for m in models},  # what each model is
        "runs": {},
    }
    chosen = {k: v for k, v in {"register_ahead": register_ahead, "workers": workers}.items() if v is not None}
    for model in models:
        for size in sizes:
            recipe, paths = bench_set(work, size, images, weights=model.weights, conf=model.conf)
            folder = paths[0].parent
            taken: dict[str, list[dict]] = {"baseline": [], "network": [], "pipeline": [], "network_workers": []}
            for turn in range(rounds):
                of = f" ({turn + 1} of {rounds})" if rounds > 1 else ""
                say(f"{model.name} {size}: ultralytics baseline{of} ...")
                taken["baseline"].append(run_child("baseline", recipe, folder, device=device))
                say(f"{model.name} {size}: network alone{of} ...")
                taken["network"].append(run_child("network", recipe, folder, device=device))
                say(f"{model.name} {size}: Inspector pipeline{of} ...")
                taken["pipeline"].append(run_child("pipeline", recipe, folder, device=device, **chosen))
                on = taken["pipeline"][-1].get("workers", 1)
                if on > 1:
                    say(f"{model.name} {size}: network alone on {on} workers{of} ...")
                    taken["network_workers"].append(run_child("network", recipe, folder, device=device, workers=on))
            base, net, pipe = (merged(taken[mode]) for mode in ("baseline", "network", "pipeline"))
            net_workers = merged(taken["network_workers"]) if taken["network_workers"] else None
            try:
                entry = summarise(pipe, net, base, net_workers)
            except InspectorError as exc:  # the other sizes and models are still measured
                say(f"{model.name} {size}: {exc}")
                results["runs"][f"{model.name} {size}"] = {"error": str(exc)}
                continue
            if onnx and device == "cpu":
                say(f"{model.name} {size}: ONNX Runtime ...")
                onnx_net = run_child("network", recipe, folder, device=device, backend="onnx")
                onnx_pipe = run_child("pipeline", recipe, folder, device=device, backend="onnx", **chosen)
                entry["onnx"] = {
                    "forward_ms": percentiles(onnx_net["stages_ms"]["inference"]),
                    "throughput_ips": onnx_pipe["throughput_ips"],
                    "speedup_forward": statistics.median(net["stages_ms"]["inference"])
                    / statistics.median(onnx_net["stages_ms"]["inference"]),
                    "agreement": run_child("agreement", recipe, folder, device="cpu"),
                }
            results["runs"][f"{model.name} {size}"] = entry
    if long_run:
        model = models[0]
        recipe, paths = bench_set(work, "0.3MP", long_run, weights=model.weights, conf=model.conf)
        say(f"{model.name} 0.3MP: long run of {long_run} images for memory drift ...")
        pipe = run_child(
            "pipeline", recipe, paths[0].parent, device=device, sample_every=max(1, long_run // 40), **chosen
        )
        results["long_run"] = {
            "model": model.name,
            "images": pipe["images"],
            "throughput_ips": pipe["throughput_ips"],
            "peak_rss_mb": pipe["peak_rss_mb"],
            **drift([tuple(s) for s in pipe["rss_mb"]]),
        }
    return results


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.0f}%"


def table(results: dict) -> str:
    """The short table printed after a run."""
    lines = [
        f"{results['machine']['cpus']} CPUs, {results['machine']['torch_threads']} torch threads in every "
        f"measurement, device {results['machine']['device']}, "
        f"{results['images_per_size']} images per size, {results['date']}",
        "",
        f"{'run':<22}{'ultra p50':>10}{'ours p50':>10}{'x faster':>9}{'fwd p50':>9}"
        f"{'around':>8}{'(CPU)':>7}{'alone':>7}{'ips':>7}{'net ips':>8}{'ratio':>7}{'net W':>7}{'ratio':>7}"
        f"{'RSS MB':>8}",
    ]
    measured = {name: r for name, r in results["runs"].items() if "error" not in r}
    for name, r in results["runs"].items():
        if "error" in r:
            lines.append(f"{name:<22}not measured: {r['error']}")
            continue
        ratios = r["ratios"]
        around_cpu = _percent(ratios.get("around_network_cpu_to_forward"))
        on_workers = r.get("network_workers")
        workers_rate = "n/a" if not on_workers else f"{on_workers['rate_ips']:.2f}"
        lines.append(
            f"{name:<22}{r['baseline_ms']['total']['p50']:>10.0f}{r['pipeline_wall_ms_per_image']:>10.0f}"
            f"{ratios['baseline_to_pipeline']:>9.1f}{r['pipeline_stages_ms']['inference']['p50']:>9.0f}"
            f"{_percent(ratios['around_network_to_forward']):>8}{around_cpu:>7}"
            f"{_percent(ratios.get('around_network_cpu_to_network_forward')):>7}"
            f"{r['throughput_ips']:>7.2f}"
            f"{r['network_only']['rate_ips']:>8.2f}{100 * ratios['throughput_to_network_rate']:>6.0f}%"
            f"{workers_rate:>7}{_percent(ratios.get('throughput_to_network_workers_rate')):>7}"
            f"{r['peak_rss_mb']['pipeline']:>8.0f}"
        )
    for name, r in measured.items():
        workers = r.get("workers", 1)
        if workers > 1 and r["images"] < 4 * workers:
            # The rate counts from each worker's first result, and those come about together.
            lines.append(
                f"  {name}: only {r['images']} images on {workers} workers: its rate is rough "
                f"(use --images {4 * workers} or more)"
            )
    lines.append("")
    lines.append("ours: wall time per image of the whole run (read ahead, inspect, store); around: read, select,")
    lines.append("rules, classify, outline and store per image against the pipeline's forward pass (CPU: reading")
    lines.append("and storing counted by their threads' CPU time, not wall time; alone: that CPU time against the")
    lines.append("forward pass of the network alone, one image at a time); ratio: throughput against the network-only")
    lines.append("rate (forward passes back to back, one image at a time); net W and its ratio: the network alone on")
    lines.append("as many workers as the pipeline, each with its share of the cores. Stage p50 / p95 (ms):")
    for name, r in measured.items():
        stages = ", ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}" for k, v in r["pipeline_stages_ms"].items())
        cpu = r.get("pipeline_cpu_ms_per_image") or {}
        if None not in cpu.values() and cpu:
            stages += f"; CPU time: read {cpu['read']:.1f}, store {cpu['store']:.1f}"
        if r.get("workers", 1) > 1:
            stages += f"; {r['workers']:.0f} images at a time"
        if r.get("register_ahead"):
            stages += f"; registered ahead on {r['register_ahead']} threads"
        lines.append(f"  {name}: {stages}")
        if "onnx" in r:
            o = r["onnx"]
            a = o["agreement"]
            lines.append(
                f"    ONNX Runtime: forward {o['forward_ms']['p50']:.0f} ms ({o['speedup_forward']:.2f}x), "
                f"{o['throughput_ips']:.2f} images/s, mask IoU mean {a['mean_iou']:.3f}, "
                f"{100 * a['share_at_least_0.95']:.0f}% of instances >= 0.95"
            )
    cold = [r["cold_start_s"] for r in measured.values() if r.get("cold_start_s")]
    if cold:
        lines.append(f"cold start to first stored result: {min(cold):.1f} - {max(cold):.1f} s")
    for name, r in measured.items():
        if r.get("cold_start_phases_s"):
            phases = ", ".join(f"{step} {s:.2f}" for step, s in r["cold_start_phases_s"].items())
            lines.append(f"  {name} (s, median): {phases}")
    if "long_run" in results:
        lr = results["long_run"]
        drift_mb = "n/a" if lr["drift_mb"] is None else f"{lr['drift_mb']:+.0f} MB"
        lines.append(
            f"long run: {lr['images']} images at {lr['throughput_ips']:.2f} images/s, "
            f"memory drift {drift_mb} after the first tenth, peak {lr['peak_rss_mb']:.0f} MB"
        )
    return "\n".join(lines)
