"""The shipped flow prior on motion kernels: held-out NLL, Levin kernels under the prior, samples, speed.

Loads ``kernel_prior-<preset>`` (`jaxdeblur.models.load`) and measures:

- the held-out NLL (nats per kernel, kernel space) of the task's evaluation
  set (1000 motion kernels from the config's eval_seed, fixed dequantisation
  noise): it must reproduce the manifest's stored metric;
- the log-density at the centre of the dequantisation box (noise 0.5, what
  `log_prob` gives by default) of those motion kernels and of the 8 Levin et
  al. kernels (real camera shake; centred on their centre of mass, cropped or
  zero-padded to the prior's support and renormalised; the mass lost by the
  crop is reported), with each Levin kernel's percentile among the motion
  kernels;
- decode(encode(k)) errors on both sets;
- the decode throughput (codes per second) at batch 4096, the operation
  UFPNet runs once per pixel.

Writes experiments/results/kernel_prior_eval_<preset>_<device>.{json,md,png};
the figure shows samples of the prior beside training-distribution motion
kernels and the Levin kernels (each kernel scaled to its own peak).

  python -m experiments.kernel_prior_eval --preset cpu
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json

from jaxdeblur import kernels
from jaxdeblur.data import default_root, levin
from jaxdeblur.models import load
from jaxdeblur.models.kernel_prior import make_task

FIGURE_COLUMNS = 8


def fit_support(k: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """(kernel centred on its centre of mass, cropped or zero-padded to (size, size), renormalised; mass lost)."""
    centred = kernels.center(jnp.asarray(k, jnp.float32))
    side = centred.shape[0]
    if side >= size:
        fitted = kernels.crop_to(centred, size)
    else:
        fitted = kernels.pad_to(centred, size)
    lost = 1.0 - float(jnp.sum(fitted))
    return np.asarray(kernels.normalize(fitted)), lost


def decode_throughput(prior, key, batch: int = 4096, repeats: int = 3) -> float:
    """Codes decoded per second (compiled; best of `repeats`)."""
    z = jax.random.normal(key, (batch, prior.fn.dim))
    jax.block_until_ready(prior.fn.decode(z))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(prior.fn.decode(z))
        best = min(best, time.perf_counter() - start)
    return batch / best


def figure(path: Path, rows: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), FIGURE_COLUMNS, figsize=(1.3 * FIGURE_COLUMNS, 1.45 * len(rows)))
    for r, (title, ks) in enumerate(rows.items()):
        images = np.asarray(kernels.to_image(jnp.asarray(ks[:FIGURE_COLUMNS])))
        for c in range(FIGURE_COLUMNS):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", interpolation="nearest", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="the shipped weights kernel_prior-<preset>")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and of the figure's motion kernels")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    prior = load(f"kernel_prior-{args.preset}")
    cfg = prior.config
    size = cfg.kernel_size
    batches = make_task(cfg).eval_batches()
    held_out = np.concatenate([np.asarray(b["kernel"]) for b in batches])
    noise = np.concatenate([np.asarray(b["noise"]) for b in batches])

    log_prob_noisy = np.asarray(prior.fn.log_prob(held_out, noise=noise))
    log_prob_centre = np.asarray(prior.fn.log_prob(held_out))
    round_trip = np.abs(np.asarray(prior(prior.fn.encode(held_out))) - held_out).max(axis=(1, 2))

    levin_items = levin(default_root())[:8]  # im1_kernel1 .. im1_kernel8: the 8 kernels
    fitted = [fit_support(item.kernel, size) for item in levin_items]
    levin_k = np.stack([f for f, _ in fitted])
    levin_lp = np.asarray(prior.fn.log_prob(levin_k))
    levin_rt = np.abs(np.asarray(prior(prior.fn.encode(levin_k))) - levin_k).max(axis=(1, 2))

    k_samples, k_motion, k_speed = jax.random.split(jax.random.key(args.seed), 3)
    samples = np.asarray(prior.fn.sample(k_samples, FIGURE_COLUMNS))
    motion = held_out[:FIGURE_COLUMNS]
    speed = decode_throughput(prior, k_speed)

    tag = f"kernel_prior_eval_{args.preset}_{device_tag()}"
    result = {
        "model": prior.name,
        "manifest_metrics": prior.manifest["metrics"],
        "manifest_steps": prior.manifest["steps"],
        "held_out": {
            "kernels": int(len(held_out)),
            "nll_nats_per_kernel": float(-log_prob_noisy.mean()),
            "nll_stderr": float(log_prob_noisy.std() / np.sqrt(len(held_out))),
            "nll_at_centre_noise": float(-log_prob_centre.mean()),
            "log_prob_centre_percentiles_5_50_95": [float(v) for v in np.percentile(log_prob_centre, [5, 50, 95])],
            "round_trip_max_abs_error": float(round_trip.max()),
        },
        "levin": [
            {"kernel": j + 1, "side": int(item.kernel.shape[0]), "mass_lost_by_crop": round(lost, 5),
             "log_prob": float(lp), "percentile_among_motion_kernels": float((log_prob_centre < lp).mean() * 100),
             "round_trip_max_abs_error": float(rt)}
            for j, (item, (_, lost), lp, rt) in enumerate(zip(levin_items, fitted, levin_lp, levin_rt))
        ],
        "sample_min_tap": float(samples.min()),
        "sample_sums": [float(s) for s in samples.sum(axis=(1, 2))],
        "decode_codes_per_second_batch_4096": round(speed, 1),
        "machine": machine(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{tag}.json", result)
    figure(args.out / f"{tag}.png", {"flow samples": samples, "motion (held out)": motion, "Levin (fitted)": levin_k})
    ho = result["held_out"]
    lines = [
        f"# Flow prior on motion kernels: {prior.name} ({prior.manifest['steps']} steps)",
        "",
        f"Held-out NLL ({ho['kernels']} motion kernels, fixed dequantisation noise): "
        f"{ho['nll_nats_per_kernel']:.2f} +- {ho['nll_stderr']:.2f} nats per kernel "
        f"(manifest: {prior.manifest['metrics'].get('nll', float('nan')):.2f}); at the centre of the "
        f"dequantisation box: {ho['nll_at_centre_noise']:.2f}. Round trip max |error|: "
        f"{ho['round_trip_max_abs_error']:.2e}.",
        "",
        "| Levin kernel | side | mass lost by crop | log p (nats) | percentile among motion kernels | round trip |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['kernel']} | {r['side']} | {r['mass_lost_by_crop']:.4f} | {r['log_prob']:.1f} | "
              f"{r['percentile_among_motion_kernels']:.1f} | {r['round_trip_max_abs_error']:.1e} |"
              for r in result["levin"]]
    lines += ["", f"Decode throughput: {speed:.0f} codes/s (batch 4096) on {machine()['device_kind']}.",
              f"Figure: {tag}.png (rows: flow samples, held-out motion kernels, Levin kernels)."]
    (args.out / f"{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
