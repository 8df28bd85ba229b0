"""UFPNet against a same-size plain NAFNet on spatially varying blur: restoration, kernel fields, cost.

Test set (never trained on; fixed seed): the centre --crop px of every image
of ../shared/data/set12 (gray) and ../shared/data/bsd68 (gray, BT.601 luma),
blurred by a spatially varying field (`jaxdeblur.data.degrade.degrade` with
a 3 x 3 grid of camera-shake kernels of support 19 and length U(4, 18) px,
bilinearly interpolated per pixel: the `cpu` preset's training distribution),
plus U(0, 2%) Gaussian noise, 8-bit quantised, no flips; image i uses the key
fold_in(key(--seed), set tag * 1000 + i). The true per-pixel kernels are
`degrade.kernel_field` of the grid.

Compared (PSNR / SSIM on the image minus a 10 px border):

- the blurred input;
- a plain NAFNet of the deblurring net's size (same width and blocks, no
  kernel branch) trained on the same data for the same steps and batch
  (--baseline: a weights folder or a `load` name, see below);
- UFPNet (--model), with the code noise of its fixed inference key;
- UFPNet with its uncertainty branch switched off at inference (sigma = 0:
  the codes are the predicted means; the network was trained with it on).

Kernel fields against the true per-pixel kernels, on the interior pixels of
a 4 px lattice: mean l2 distance ||k - k_true||_2 and the kernel similarity
of Hu & Yang (max normalised cross-correlation over shifts,
`jaxdeblur.metrics.kernel_similarity`, on a 16 px lattice); for scale, the
same for two fields without estimation: the delta kernel everywhere (no
blur) and the image's true mean kernel everywhere (the best single kernel,
a uniform-blur model). Cost: seconds per megapixel of the test images (after
compilation) and XLA's compiled temporary memory per megapixel at 256 x 256.

The baseline NAFNet of the `cpu` preset comparison was trained with

    jaxdeblur train nafnet --preset cpu --data ../shared/data/train400 --workdir runs/ufpnet-baseline-nafnet \\
        --set data.degrade.spatially_varying=1.0 --set data.degrade.grid=[3,3] --set data.held_out=8 \\
        --set data.eval_batch_size=8 \\
        --set train.steps=<UFPNet stage-2 steps> --set train.batch_size=<same> --export runs/ufpnet-baseline-nafnet/export

    python -m experiments.ufpnet_eval --model ufpnet-cpu --baseline runs/ufpnet-baseline-nafnet/export/nafnet/cpu
    python -m experiments.ufpnet_eval --limit 2 --out /tmp/x ...        # smoke

Writes ufpnet_eval_<model>_<device>.json / .md / .png (+ _kernels.png) to --out (experiments/results).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments._common import RESULTS, device_tag, machine, write_json  # noqa: E402

from jaxdeblur.data import default_root  # noqa: E402
from jaxdeblur.data.degrade import DegradeConfig, degrade, kernel_field, tile_size  # noqa: E402
from jaxdeblur.data.pipeline import eval_batches  # noqa: E402
from jaxdeblur.data.sources import ImageFolder  # noqa: E402
from jaxdeblur.metrics import kernel_similarity, psnr, ssim  # noqa: E402
from jaxdeblur.models import load  # noqa: E402
from jaxdeblur.models.ufpnet import kernel_field_figure  # noqa: E402
from jaxdeblur.nets.nafnet import restore as nafnet_restore  # noqa: E402
from jaxdeblur.nets.ufpnet import restore as ufpnet_restore  # noqa: E402

BORDER = 10
SET_TAGS = {"set12": 1, "bsd68": 2}
L2_STEP, SIMILARITY_STEP = 4, 16


def test_config(crop: int) -> DegradeConfig:
    return DegradeConfig(crop=crop, kernel_size=19, kind_probs=(1.0, 0.0, 0.0), motion_length=(4.0, 18.0),
                         spatially_varying=1.0, grid=(3, 3), noise_sigma=(0.0, 0.02), augment=False)


def test_set(root: Path, name: str, cfg: DegradeConfig, seed: int, limit: int | None) -> list[dict]:
    """[{"name", "blurred", "sharp" (crop, crop), "field" (crop, crop, 19, 19)}] of one folder (deterministic)."""
    folder = ImageFolder(root / name, mode="gray")
    count = len(folder) if limit is None else min(limit, len(folder))
    items = []
    for i in range(count):
        (tile,) = eval_batches(_One(folder, i), batch_size=1, tile=tile_size(cfg))
        key = jax.random.fold_in(jax.random.key(seed), SET_TAGS.get(name, 99) * 1000 + i)
        pair = degrade(key, tile["sharp"], cfg)
        items.append({"name": f"{name}/{Path(folder.name(i)).stem}", "blurred": np.asarray(pair["blurred"][0, ..., 0]),
                      "sharp": np.asarray(pair["sharp"][0, ..., 0]),
                      "field": np.asarray(kernel_field(pair["kernel_grid"], cfg.crop)[0])})
    return items


class _One:
    """One image of a source as a source (for `eval_batches`' centre crop)."""

    def __init__(self, source, index: int):
        self.source, self.index = source, index

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.source[self.index]

    def image_size(self, i):
        return self.source.image_size(self.index)

    def name(self, i):
        return self.source.name(self.index)


def score(estimate, sharp) -> tuple[float, float]:
    a, b = np.asarray(estimate)[BORDER:-BORDER, BORDER:-BORDER], sharp[BORDER:-BORDER, BORDER:-BORDER]
    return float(psnr(a, b)), float(ssim(a, b))


_similarity = jax.jit(jax.vmap(kernel_similarity))


def field_errors(field: np.ndarray, true: np.ndarray) -> dict:
    """Mean l2 distance (4 px lattice) and mean kernel similarity (16 px lattice) over the interior pixels."""
    inner = slice(BORDER, -BORDER)
    a, b = field[inner, inner][::L2_STEP, ::L2_STEP], true[inner, inner][::L2_STEP, ::L2_STEP]
    l2 = float(np.mean(np.sqrt(np.sum((a - b) ** 2, axis=(-2, -1)))))
    a, b = field[inner, inner][::SIMILARITY_STEP, ::SIMILARITY_STEP], true[inner, inner][::SIMILARITY_STEP,
                                                                                          ::SIMILARITY_STEP]
    k = a.shape[-1]
    similarity = float(np.mean(_similarity(jnp.asarray(a.reshape(-1, k, k)), jnp.asarray(b.reshape(-1, k, k)))))
    return {"l2": l2, "similarity": similarity}


def constant_fields(true: np.ndarray) -> dict[str, np.ndarray]:
    """Reference fields without estimation: the delta kernel and the true mean kernel at every pixel."""
    k = true.shape[-1]
    delta = np.zeros((k, k), np.float32)
    delta[k // 2, k // 2] = 1.0
    return {"delta kernel": np.broadcast_to(delta, true.shape),
            "true mean kernel": np.broadcast_to(true.mean(axis=(0, 1)), true.shape)}


def timed(fn, images: list[np.ndarray]) -> tuple[list, float]:
    """(outputs, seconds per megapixel after a warm-up call compiled the shape)."""
    fn(images[0])
    t0 = time.perf_counter()
    outs = [fn(x) for x in images]
    seconds = time.perf_counter() - t0
    return outs, seconds / (sum(x.size for x in images) / 1e6)


def temp_mb_per_mp(apply, model, side: int = 256) -> float:
    """XLA's compiled temporary memory (MB) per megapixel of `apply(model, x)` on one side x side gray image."""
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda state, x: apply(nnx.merge(graphdef, state), x))
    analysis = fn.lower(state, jnp.zeros((1, side, side, 1), jnp.float32)).compile().memory_analysis()
    return analysis.temp_size_in_bytes / 2**20 / (side * side / 1e6)


def load_weights(spec: str):
    """`jaxdeblur.models.load` of a name ("ufpnet-cpu") or of a weights folder (<root>/<model>/<preset>)."""
    folder = Path(spec)
    if (folder / "manifest.json").is_file():
        return load(folder.parent.name, preset=folder.name, root=folder.parent.parent)
    return load(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ufpnet-cpu", help="UFPNet weights: a load() name or a weights folder")
    parser.add_argument("--baseline", required=True, help="the same-size NAFNet: a weights folder or load() name")
    parser.add_argument("--data", type=Path, default=None, help="root of set12/ and bsd68/ (../shared/data)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="images per folder (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    root = args.data or default_root()
    cfg = test_config(args.crop)
    items = [it for name in SET_TAGS for it in test_set(root, name, cfg, args.seed, args.limit)]
    model, baseline = load_weights(args.model), load_weights(args.baseline)
    blurred = [it["blurred"] for it in items]

    results, seconds = {}, {}
    results["blurred input"] = blurred
    results["NAFNet (no kernel branch)"], seconds["NAFNet (no kernel branch)"] = timed(baseline, blurred)
    ufp, seconds["UFPNet"] = timed(model, blurred)
    results["UFPNet"] = [r.restored for r in ufp]
    ufp_off, seconds["UFPNet, sigma = 0"] = timed(lambda x: model(x, uncertainty=False), blurred)
    results["UFPNet, sigma = 0"] = [r.restored for r in ufp_off]

    rows = {}
    for method, outs in results.items():
        per_image = [score(o, it["sharp"]) for o, it in zip(outs, items)]
        rows[method] = {"psnr": float(np.mean([p for p, _ in per_image])),
                        "ssim": float(np.mean([s for _, s in per_image])),
                        "per_set": {name: {"psnr": float(np.mean([p for (p, _), it in zip(per_image, items)
                                                                  if it["name"].startswith(name)])),
                                           "ssim": float(np.mean([s for (_, s), it in zip(per_image, items)
                                                                  if it["name"].startswith(name)]))}
                                    for name in SET_TAGS},
                        "psnr_per_image": [p for p, _ in per_image]}
        if method in seconds:
            rows[method]["seconds_per_mp"] = round(seconds[method], 3)
    fields = {"UFPNet": [r.kernels for r in ufp], "UFPNet, sigma = 0": [r.kernels for r in ufp_off]}
    kernel_rows = {}
    for method, estimates in fields.items():
        errors = [field_errors(f, it["field"]) for f, it in zip(estimates, items)]
        kernel_rows[method] = {m: float(np.mean([e[m] for e in errors])) for m in ("l2", "similarity")}
    for method in ("delta kernel", "true mean kernel"):
        errors = [field_errors(constant_fields(it["field"])[method], it["field"]) for it in items]
        kernel_rows[method] = {m: float(np.mean([e[m] for e in errors])) for m in ("l2", "similarity")}
    memory = {"NAFNet (no kernel branch)": temp_mb_per_mp(nafnet_restore, baseline.model),
              "UFPNet": temp_mb_per_mp(lambda m, x: ufpnet_restore(m, x, jax.random.key(0)), model.model)}
    sigma_mean = float(np.mean([r.sigma.mean() for r in ufp]))

    tag = f"{model.name.replace('-', '_')}_{device_tag()}"
    record = {"label": "cpu preset, reduced (CPU-trained small networks, 128 px crops of set12 + bsd68)",
              "machine": machine(), "model": args.model, "model_manifest": model.manifest["data"] | {
                  "steps": model.manifest["steps"], "config": model.manifest["config"]},
              "baseline": args.baseline, "baseline_steps": baseline.manifest["steps"],
              "parameters": {"UFPNet": model.manifest["parameters"], "NAFNet": baseline.manifest["parameters"]},
              "test_set": {"folders": list(SET_TAGS), "images": len(items), "crop": args.crop, "seed": args.seed,
                           "degradation": "3x3 grid of motion kernels (support 19, length 4-18 px), bilinear per "
                                          "pixel, noise U(0, 2%), 8-bit", "border": BORDER},
              "restoration": rows, "kernel_field": kernel_rows, "ufpnet_mean_sigma": sigma_mean,
              "xla_temp_mb_per_mp_at_256": memory}
    write_json(args.out / f"ufpnet_eval_{tag}.json", record)
    write_markdown(args.out / f"ufpnet_eval_{tag}.md", record)
    write_figures(args.out, tag, items, results, ufp)


def write_markdown(path: Path, record: dict) -> None:
    rows, kernels = record["restoration"], record["kernel_field"]
    lines = ["# UFPNet vs a same-size plain NAFNet on spatially varying blur", "", f"**{record['label']}**", "",
             f"Machine: {record['machine']['processor']}, {record['machine']['cpu_count']} CPU cores (shared), "
             f"jax {record['machine']['jax']}. Test set: {record['test_set']['images']} images "
             f"({', '.join(record['test_set']['folders'])}), {record['test_set']['crop']} px centre crops, "
             f"{record['test_set']['degradation']}, seed {record['test_set']['seed']}; scores without a "
             f"{BORDER} px border.", "",
             f"UFPNet: `{record['model']}` ({record['parameters']['UFPNet']:,} parameters incl. the frozen flow, "
             f"{record['model_manifest']['steps']} steps in its last stage); NAFNet: `{record['baseline']}` "
             f"({record['parameters']['NAFNet']:,} parameters, {record['baseline_steps']} steps).", "",
             "| method | PSNR (dB) | SSIM | set12 PSNR | bsd68 PSNR | s / MP |", "|---|---|---|---|---|---|"]
    for method, row in rows.items():
        lines.append(f"| {method} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['per_set']['set12']['psnr']:.2f} | "
                     f"{row['per_set']['bsd68']['psnr']:.2f} | {row.get('seconds_per_mp', '')} |")
    lines += ["", "Kernel field against the true per-pixel kernels (interior pixels):", "",
              "| field | mean l2 distance | mean kernel similarity |", "|---|---|---|"]
    for method, row in kernels.items():
        lines.append(f"| {method} | {row['l2']:.4f} | {row['similarity']:.3f} |")
    memory = record["xla_temp_mb_per_mp_at_256"]
    lines += ["", f"UFPNet's mean sigma on the test set: {record['ufpnet_mean_sigma']:.3f} (so switching the "
              "uncertainty branch off changes next to nothing). XLA temporary memory per megapixel (compiled, 256 x "
              f"256): NAFNet {memory['NAFNet (no kernel branch)']:.0f} MB, UFPNet {memory['UFPNet']:.0f} MB; "
              "UFPNet's chunks of the kernel field have a fixed size, so this overstates large images: see "
              "bench_ufpnet_memory_cpu.json (a 0.92 MP frame: 1.0 GB temporary + 1.3 GB kernel field). Seconds "
              "per megapixel on the shared 2-core CPU (load ~10 from other jobs): indicative only.", ""]
    path.write_text("\n".join(lines))


def write_figures(out: Path, tag: str, items: list[dict], results: dict, ufp: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(results)
    gains = np.array([[score(o, it["sharp"])[0] for o, it in zip(results[m], items)] for m in methods])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, (m, marker) in enumerate(zip(methods[1:], "o^x"), start=1):
        ax.scatter(gains[0], gains[i] - gains[0], s=14, marker=marker, label=m)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("PSNR of the blurred input (dB)")
    ax.set_ylabel("PSNR gain over the input (dB)")
    ax.legend(fontsize=8)
    ax.set_title("per image, spatially varying blur", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"ufpnet_eval_{tag}.png", dpi=110)
    plt.close(fig)
    best = int(np.argmax(gains[methods.index("UFPNet")] - gains[0]))
    for index, suffix in ((0, "kernels"), (best, "kernels_best")):
        kernel_field_figure(out / f"ufpnet_eval_{tag}_{suffix}.png", items[index]["blurred"], ufp[index],
                            sharp=items[index]["sharp"], true_kernels=items[index]["field"], grid=(3, 3),
                            title=f"{items[index]['name']}: UFPNet kernels (left) vs true (2nd)")


if __name__ == "__main__":
    main()
