"""Calibration of the MAP method's confidence (`jaxdeblur.estimate.confidence`): good kernels vs wrong ones.

Synthetic cases: 96 x 96 crops of 4 scikit-image photos (camera, astronaut, coffee, chelsea), each blurred by
2 camera-shake kernels of 13 px (`kernels.motion`, a trajectory longer than the support, shrunk to fit), plus
Gaussian noise of std 0.003 or 0.01. For each case, `kernel_confidence` of:

- true: the true kernel;  est: the MAP estimate at 13 px ("tiny" preset);
- est_k5: the MAP estimate at 5 px (a support far too small: a failed estimate);
- delta (no deblurring), rot90 (the truth rotated by 90 degrees), other (another motion kernel), gauss
  (a Gaussian, sigma 2 px): deliberately wrong kernels.

Reported: residual_ratio, border_mass, spread, the flag, Hu & Yang's similarity to the truth (13 px kernels),
and per candidate how many of the 16 cases were flagged.

  python experiments/map_confidence.py -> results/map_confidence_cpu.{json,md}
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, device_tag, machine, write_json  # noqa: E402

from jaxdeblur import kernels  # noqa: E402
from jaxdeblur.data.benchmarks import sample_photos  # noqa: E402
from jaxdeblur.estimate import estimate_kernels, resolve_config  # noqa: E402
from jaxdeblur.estimate.confidence import kernel_confidence  # noqa: E402
from jaxdeblur.forward import blur  # noqa: E402
from jaxdeblur.metrics import kernel_similarity  # noqa: E402

SIZE, K = 96, 13
PHOTOS = ("camera", "astronaut", "coffee", "chelsea")
WRONG = ("delta", "rot90", "other", "gauss")


def motion(seed: int) -> np.ndarray:
    return np.asarray(kernels.motion(jax.random.key(seed), K, length=3.0 * (K - 1), anxiety=0.004))


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
    flagged = defaultdict(lambda: [0, 0])
    for r in rows:
        flagged[(r["candidate"], r["noise"])][0] += not r["confident"]
        flagged[(r["candidate"], r["noise"])][1] += 1
    summary = {}
    for noise in (0.003, 0.01):
        true = [r["residual_ratio"] for r in rows if r["candidate"] == "true" and r["noise"] == noise]
        wrong = [r["residual_ratio"] for r in rows if r["candidate"] in ("rot90", "other", "gauss")
                 and r["noise"] == noise]
        summary[f"noise {noise}"] = {"true_residual_max": max(true), "true_residual_min": min(true),
                                     "wrong_residual_min": min(wrong), "wrong_residual_max": max(wrong),
                                     "flagged": {c: f"{flagged[(c, noise)][0]}/{flagged[(c, noise)][1]}"
                                                 for c in ("true", "est", "est_k5", *WRONG)}}
    name = f"map_confidence_{device_tag()}"
    write_json(RESULTS / f"{name}.json", {"summary": summary, "rows": rows, "machine": machine(),
                                          "thresholds": {"residual_max": cfg.confidence_residual_max,
                                                         "border_max": cfg.confidence_border_max}})
    lines = ["# Confidence of MAP kernel estimates: calibration", "",
             f"thresholds: residual_ratio > {cfg.confidence_residual_max} or border_mass > "
             f"{cfg.confidence_border_max} flags an estimate.", "",
             "| noise | true residual (min-max) | wrong residual (min-max) | flagged: true / est / est_k5 / delta / "
             "rot90 / other / gauss |", "|---|---|---|---|"]
    for noise, s in summary.items():
        lines.append(f"| {noise} | {s['true_residual_min']:.2f}-{s['true_residual_max']:.2f} | "
                     f"{s['wrong_residual_min']:.2f}-{s['wrong_residual_max']:.2f} | "
                     + " / ".join(s["flagged"].values()) + " |")
    lines += ["", "| photo | kernel | noise | candidate | similarity | residual | border | spread | flag |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sim = "" if r["similarity"] is None else f"{r['similarity']:.2f}"
        lines.append(f"| {r['photo']} | {r['kernel_seed']} | {r['noise']} | {r['candidate']} | {sim} | "
                     f"{r['residual_ratio']:.2f} | {r['border_mass']:.3f} | {r['spread']:.3f} | "
                     f"{'' if r['confident'] else 'LOW'} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:8]))


if __name__ == "__main__":
    main()
