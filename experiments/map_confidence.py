"""Calibration of the MAP method's confidence (`jaxdeblur.estimate.confidence`): good kernels vs wrong ones.

Synthetic cases: 96 x 96 crops of 4 scikit-image photos (camera, astronaut, coffee, chelsea), each blurred by
2 camera-shake kernels of 13 px (`kernels.motion`, a trajectory longer than the support, shrunk to fit), plus
Gaussian noise of std 0.003 or 0.01. For each case, `kernel_confidence` of:

- true: the true kernel;  est: the MAP estimate at 13 px ("tiny" preset);
- est_k5: the MAP estimate at 5 px (a support far too small: a failed estimate);
- delta (no deblurring), rot90 (the truth rotated by 90 degrees), other (another motion kernel), gauss
  (a Gaussian, sigma 2 px): deliberately wrong kernels.

Real blur: 16 of Levin et al.'s images (im1..im4 x kernels 1, 3, 5, 7; when the data is there): the true
kernel, the MAP estimate at SelfDeblur's size ("default" preset), rot90, other (the next Levin kernel), delta;
and the true kernel of all 32 (noise column "levin-true": kernels 4 and 8 are not explained by one uniform
convolution even with the true kernel).

Reported: residual_ratio, border_mass, spread, the flag, Hu & Yang's similarity to the truth (13 px kernels),
and per candidate how many of the cases were flagged.

  python -m experiments.map_confidence -> results/map_confidence_cpu.{json,md}
"""

from __future__ import annotations

from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json

from jaxdeblur import kernels
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.data.benchmarks import sample_photos
from jaxdeblur.estimate import estimate_kernels, resolve_config
from jaxdeblur.estimate.confidence import kernel_confidence
from jaxdeblur.forward import blur
from jaxdeblur.metrics import kernel_similarity

SIZE, K = 96, 13
PHOTOS = ("camera", "astronaut", "coffee", "chelsea")
WRONG = ("delta", "rot90", "other", "gauss")


def motion(seed: int) -> np.ndarray:
    return np.asarray(kernels.motion(jax.random.key(seed), K, length=3.0 * (K - 1), anxiety=0.004))


def _square(k: np.ndarray) -> np.ndarray:
    n = max(k.shape) + 1 - max(k.shape) % 2
    return np.asarray(kernels.center(kernels.pad_to(jnp.asarray(k), (n, n))))


def levin_rows() -> list[dict]:
    """The Levin cases (noise column "levin"); none when the data is absent."""
    try:
        items = levin()[::2]
    except FileNotFoundError as error:
        print(f"skipping Levin: {error}")
        return []
    cfg = resolve_config("default")
    truths = {it.name.split("_")[1]: _square(it.kernel) for it in levin()}
    groups = defaultdict(list)
    for i, it in enumerate(items):
        groups[levin_kernel_size(it.name)].append(i)
    estimates = {}
    for size, members in groups.items():
        est = estimate_kernels(np.stack([items[i].blurred for i in members]), size, config=cfg)
        estimates.update({i: est.kernel[j] for j, i in enumerate(members)})
    rows = []
    for it in levin():
        conf = kernel_confidence(it.blurred, truths[it.name.split("_")[1]], cfg)
        rows.append({"photo": it.name, "kernel_seed": int(it.name[-1]), "noise": "levin-true", "candidate": "true",
                     "similarity": 1.0, **conf.record()})
        print(rows[-1], flush=True)
    for i, it in enumerate(items):
        j = int(it.name[-1])
        truth = truths[f"kernel{j}"]
        delta = np.zeros_like(truth)
        delta[truth.shape[0] // 2, truth.shape[1] // 2] = 1
        candidates = {"true": truth, "est": estimates[i], "rot90": np.rot90(truth).copy(),
                      "other": truths[f"kernel{j % 8 + 1}"], "delta": delta}
        for cname, k in candidates.items():
            conf = kernel_confidence(it.blurred, k, cfg)
            rows.append({"photo": it.name, "kernel_seed": j, "noise": "levin", "candidate": cname,
                         "similarity": float(kernel_similarity(k, it.kernel)), **conf.record()})
            print(rows[-1], flush=True)
    return rows


def main():
    cfg = resolve_config("tiny")
    photos = sample_photos(PHOTOS, size=SIZE)
    rows = []
    for name, x in photos.items():
        for kseed in (1, 2):
            truth = motion(kseed)
            for noise in (0.003, 0.01):
                rng = np.random.default_rng(kseed)
                y = np.clip(np.asarray(blur(jnp.asarray(x), truth, "reflect"))
                            + noise * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
                delta = np.zeros((K, K), np.float32)
                delta[K // 2, K // 2] = 1
                candidates = {"true": truth, "est": estimate_kernels(y, K, config=cfg).kernel,
                              "est_k5": estimate_kernels(y, 5, config=cfg).kernel, "delta": delta,
                              "rot90": np.rot90(truth).copy(), "other": motion(kseed + 10),
                              "gauss": np.asarray(kernels.gaussian(K, 2.0))}
                for cname, k in candidates.items():
                    conf = kernel_confidence(y, k, cfg)
                    sim = float(kernel_similarity(k, truth)) if k.shape == truth.shape else None
                    rows.append({"photo": name, "kernel_seed": kseed, "noise": noise, "candidate": cname,
                                 "similarity": sim, **conf.record()})
                    print(rows[-1], flush=True)
    rows += levin_rows()
    flagged = defaultdict(lambda: [0, 0])
    for r in rows:
        flagged[(r["candidate"], r["noise"])][0] += not r["confident"]
        flagged[(r["candidate"], r["noise"])][1] += 1
    summary = {}
    for noise in (0.003, 0.01, "levin", "levin-true"):
        if not any(r["noise"] == noise for r in rows):
            continue
        true = [r["residual_ratio"] for r in rows if r["candidate"] == "true" and r["noise"] == noise]
        wrong = [r["residual_ratio"] for r in rows if r["candidate"] in ("rot90", "other", "gauss")
                 and r["noise"] == noise]
        est = [r["residual_ratio"] for r in rows if r["candidate"] == "est" and r["noise"] == noise] or [np.nan]
        wrong = wrong or [np.nan]
        summary[f"noise {noise}"] = {"true_residual_max": max(true), "true_residual_min": min(true),
                                     "est_residual_min": min(est), "est_residual_max": max(est),
                                     "wrong_residual_min": min(wrong), "wrong_residual_max": max(wrong),
                                     "flagged": {c: f"{flagged[(c, noise)][0]}/{flagged[(c, noise)][1]}"
                                                 for c in ("true", "est", "est_k5", *WRONG)
                                                 if flagged[(c, noise)][1]}}
    name = f"map_confidence_{device_tag()}"
    write_json(RESULTS / f"{name}.json", {"summary": summary, "rows": rows, "machine": machine(),
                                          "thresholds": {"residual_max": cfg.confidence_residual_max,
                                                         "border_max": cfg.confidence_border_max}})
    lines = ["# Confidence of MAP kernel estimates: calibration", "",
             f"thresholds: residual_ratio > {cfg.confidence_residual_max} or border_mass > "
             f"{cfg.confidence_border_max} flags an estimate.", "",
             "| noise | true residual (min-max) | est residual (min-max) | wrong residual (min-max) | flagged |",
             "|---|---|---|---|---|"]
    for noise, s in summary.items():
        lines.append(f"| {noise} | {s['true_residual_min']:.2f}-{s['true_residual_max']:.2f} | "
                     f"{s['est_residual_min']:.2f}-{s['est_residual_max']:.2f} | "
                     f"{s['wrong_residual_min']:.2f}-{s['wrong_residual_max']:.2f} | "
                     + ", ".join(f"{c} {v}" for c, v in s["flagged"].items()) + " |")
    lines += ["", "| photo | kernel | noise | candidate | similarity | residual | border | spread | flag |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sim = "" if r["similarity"] is None else f"{r['similarity']:.2f}"
        lines.append(f"| {r['photo']} | {r['kernel_seed']} | {r['noise']} | {r['candidate']} | {sim} | "
                     f"{r['residual_ratio']:.2f} | {r['border_mass']:.3f} | {r['spread']:.3f} | "
                     f"{'' if r['confident'] else 'LOW'} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
