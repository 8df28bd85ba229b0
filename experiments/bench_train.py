"""Training and inference speed of NAFNet with the one trainer, and the same step in PyTorch side by side.

Per preset ("cpu", and "paper" at a reduced batch for CPUs): the trainer's
jitted train call (`jaxdeblur.train.program_for`: degradation on device,
forward, PSNR loss, gradients, clipping, AdamW) on random host tiles of the
preset's size; compile time reported apart; images/s and ms per step as the
median of --repeats timed steps. With --devices 8 the same is measured in a
subprocess on 8 forced host devices (XLA_FLAGS=--xla_force_host_platform_
device_count=8: the same 2 cores split 8 ways, so this checks the sharded
path's overhead, not a speed-up). Inference: ms per megapixel of the
restorer (`NAFNetRestorer`) on a 512 x 512 image. When torch is installed,
the same network and step in PyTorch (experiments/torch_nafnet.py), timed
in the same run, interleaved with the JAX rounds; beside it (1 device) the
JAX step of the same work as PyTorch's (network, loss, gradients, clipping,
AdamW on fixed tensors: no degradation), `jax_network_ms_per_step`.

  python -m experiments.bench_train                        # cpu preset, 1 and 8 devices, torch if present
  python -m experiments.bench_train --presets cpu paper --paper-batch 2
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the children run as `python -m experiments.bench_train` from here


def jax_setup(args):
    import jax
    import numpy as np

    from jaxdeblur.data.degrade import tile_size
    from jaxdeblur.models import nafnet
    from jaxdeblur.train.parallel import data_mesh
    from jaxdeblur.train.program import program_for

    def preset(name):
        cfg = nafnet.PRESETS[name]
        if name == "paper":  # synthetic pairs of the paper's crop size (no GoPro data here), reduced batch
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, paired=False),
                                      train=dataclasses.replace(cfg.train, batch_size=args.paper_batch))
        return cfg

    def timer(name):
        cfg = preset(name)
        task = nafnet.make_task(cfg)
        program = program_for(task, data_mesh())
        state = program.initial_state(0)
        tile = tile_size(cfg.data.degrade)
        host = {"sharp": np.random.default_rng(0).uniform(size=(cfg.train.batch_size, tile, tile, cfg.channels))
                .astype(np.float32)}
        batches = program.device_batches([host])
        call = program.train_call(1)
        t0 = time.perf_counter()
        state, out = call(state, batches)
        jax.block_until_ready(out)
        compile_s = time.perf_counter() - t0
        holder = {"state": state}

        def run():
            t = time.perf_counter()
            holder["state"], out = call(holder["state"], batches)
            jax.block_until_ready(out)
            return time.perf_counter() - t

        return cfg, compile_s, run

    return timer


def jax_network_step(cfg):
    """The step PyTorch's side does, in JAX: the task's NAFNet, PSNR loss, gradients, clipping and AdamW on fixed
    (blurred, sharp) tensors, without the on-device degradation of the trainer's call; compiled with the
    trainer's CPU options. Returns the timed run."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from jaxdeblur.metrics import psnr_per_image
    from jaxdeblur.models import nafnet
    from jaxdeblur.nets.conv import CPU_COMPILER_OPTIONS

    graphdef, params = nnx.split(nafnet.build_model(cfg, rngs=nnx.Rngs(0)))
    tx = nafnet.make_task(cfg).optimizer()
    rng = np.random.default_rng(0)
    shape = (cfg.train.batch_size, cfg.data.degrade.crop, cfg.data.degrade.crop, cfg.channels)
    blurred, sharp = (jnp.asarray(rng.uniform(size=shape), jnp.float32) for _ in range(2))

    def loss(p):
        return -jnp.mean(psnr_per_image(nnx.merge(graphdef, p)(blurred), sharp))

    @functools.partial(jax.jit, donate_argnums=(0, 1), compiler_options=CPU_COMPILER_OPTIONS)
    def step(p, opt_state):
        value, grads = jax.value_and_grad(loss)(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, value

    *state, value = step(params, tx.init(params))  # compile
    jax.block_until_ready(value)
    holder = {"state": tuple(state)}

    def run():
        t = time.perf_counter()
        *state, value = step(*holder["state"])
        jax.block_until_ready(value)
        holder["state"] = tuple(state)
        return time.perf_counter() - t

    return run


def torch_setup(cfg):
    import torch
    from experiments.torch_nafnet import NAFNet, train_step_fn

    torch.manual_seed(0)
    model = NAFNet(cfg.channels, cfg.width, cfg.enc_blocks, cfg.middle_blocks, cfg.dec_blocks)
    step = train_step_fn(model)
    crop, b = cfg.data.degrade.crop, cfg.train.batch_size
    blurred, sharp = torch.rand(b, cfg.channels, crop, crop), torch.rand(b, cfg.channels, crop, crop)
    step(blurred, sharp)  # warm-up

    def run():
        t = time.perf_counter()
        step(blurred, sharp)
        return time.perf_counter() - t

    return run


def measure(args) -> dict:
    import jax

    from experiments._common import machine

    timer = jax_setup(args)
    out = {"devices": jax.device_count(), "machine": machine(), "presets": {}}
    for name in args.presets:
        cfg, compile_s, run_jax = timer(name)
        run_torch = None
        if args.torch:
            try:
                run_torch = torch_setup(cfg)
            except ImportError:
                run_torch = None
        run_net = jax_network_step(cfg) if jax.device_count() == 1 else None
        jax_times, net_times, torch_times = [], [], []
        for _ in range(args.repeats):  # interleaved rounds: all see the same machine load
            jax_times.append(run_jax())
            if run_net:
                net_times.append(run_net())
            if run_torch:
                torch_times.append(run_torch())
        b = cfg.train.batch_size
        row = {"batch": b, "crop": cfg.data.degrade.crop, "width": cfg.width, "enc_blocks": list(cfg.enc_blocks),
               "compile_s": round(compile_s, 2), "jax_ms_per_step": 1e3 * statistics.median(jax_times),
               "jax_images_per_s": b / statistics.median(jax_times)}
        if net_times:  # the same work as PyTorch's step (no degradation)
            row.update(jax_network_ms_per_step=1e3 * statistics.median(net_times))
        if torch_times:
            row.update(torch_ms_per_step=1e3 * statistics.median(torch_times),
                       torch_images_per_s=b / statistics.median(torch_times),
                       jax_speedup_vs_torch=statistics.median(torch_times) / statistics.median(jax_times))
        if torch_times and net_times:
            row.update(jax_network_speedup_vs_torch=statistics.median(torch_times) / statistics.median(net_times))
        out["presets"][name] = row
        print(json.dumps({name: row}), flush=True)
    if args.inference:
        out["inference"] = inference_speed()
    return out


def inference_speed() -> dict:
    import numpy as np
    from flax import nnx

    from jaxdeblur.models import nafnet

    model = nafnet.build_model(nafnet.CPU, rngs=nnx.Rngs(0))
    restorer = nafnet.make_inference(model, nafnet.CPU)
    x = np.random.default_rng(0).uniform(size=(512, 512)).astype(np.float32)
    restorer(x)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        restorer(x)
        times.append(time.perf_counter() - t)
    return {"preset": "cpu", "image": [512, 512], "ms_per_megapixel": 1e3 * statistics.median(times) / 0.262144}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--paper-batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "bench_train_cpu.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one device count, JSON on the last line of stdout
        args.inference = jax_device_count() == 1
        print("RESULT " + json.dumps(measure(args)))
        return
    runs = {}
    for n in args.devices:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        cmd = [sys.executable, "-m", "experiments.bench_train", "--child", "--presets", *args.presets,
               "--paper-batch", str(args.paper_batch), "--repeats", str(args.repeats)]
        cmd += [] if args.torch and n == 1 else ["--no-torch"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            raise SystemExit(f"{n} devices failed:\n{proc.stderr[-3000:]}")
        runs[f"{n}_devices"] = json.loads(line[-1][len("RESULT "):])
    record = {"benchmark": "bench_train", "note": "2-core CPU; other jobs may have shared the machine (see load)",
              "load_average": os.getloadavg(), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


def jax_device_count() -> int:
    import jax

    return jax.device_count()


if __name__ == "__main__":
    main()
