"""`jaxdeblur deblur` never loses or mislabels a result, and says what went wrong in one line.

Runs use the tiny preset on 24 x 24 images (a colour image's luma is 24 x 24 too), a 5 x 5 kernel, one
image per run and checkpoints every 10 iterations (chunks of 10), so they share their compiled programs
(and those of tests/test_api.py and tests/engine/test_checkpoint.py).
"""

import inspect
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jaxdeblur import outputs
from jaxdeblur.cli import app
from jaxdeblur.engine import checkpoint as checkpoint_module
from jaxdeblur.engine import memory
from jaxdeblur.io import save_image
from jaxdeblur.methods import SelfDeblur

SIZE, K = 24, 5


def grey(seed=0, size=SIZE):
    return np.random.default_rng(seed).uniform(0.1, 0.9, (size, size)).astype(np.float32)


def colour(seed=1):
    base = grey(seed)
    return np.stack([base, 0.8 * base + 0.1, 0.5 * base + 0.3], axis=-1).astype(np.float32)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def deblur(inputs, out, *extra):
    """A DIP run (SelfDeblur, tiny preset): checkpoints, resume and interrupts are the engine's."""
    return run("deblur", *inputs, "-o", out, "-k", K, "--method", "selfdeblur", "--preset", "tiny",
               "--checkpoint-every", 10, *extra)


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow(reason="two more DIP command runs with figures (~18 s): colour handling is checked by default in "
                         "tests/test_api.py (y and grey-with-rgb, the colour record) and tests/engine (rgb), the "
                         "command's colour / grey PNG modes by tests/test_restore.py's command test")
def test_colour_in_colour_out_and_grey_with_rgb_stays_grey(tmp_path):
    save_image(tmp_path / "photo.png", colour())
    save_image(tmp_path / "scan.png", grey())
    res = deblur([tmp_path / "photo.png"], tmp_path / "out")
    assert res.exit_code == 0, res.output
    for name in ("photo_restored.png", "photo_deconvolved.png"):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.mode, img.size) == ("RGB", (SIZE, SIZE))
    record = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert record["color"]["deblurred"] == ["Y"] and record["color"]["kept_from_input"] == ["Cb", "Cr"]
    assert record["files"]["deconvolved"]["path"] == "photo_deconvolved.png"
    assert "the generator's" in res.output and "deconvolved non-blind" in res.output  # which is which

    res = deblur([tmp_path / "scan.png"], tmp_path / "out", "--color", "rgb")
    assert res.exit_code == 0, res.output
    assert "grey input: color='rgb' runs one channel and the result is grey" in res.output
    for name in ("scan_restored.png", "scan_deconvolved.png"):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.mode, img.size) == ("L", (SIZE, SIZE))
    assert json.loads((tmp_path / "out" / "scan.json").read_text())["color"]["deblurred"] == ["gray"]


@pytest.mark.slow(reason="a batch of two DIP runs through the command (~13 s): the shared naming (outputs.plan_outputs: "
                         "a_img_*, b_img_*) is checked by default by tests/test_restore.py's command test")
def test_inputs_with_the_same_name_get_their_own_files(tmp_path):
    for folder, seed in (("a", 0), ("b", 1)):
        (tmp_path / folder).mkdir()
        save_image(tmp_path / folder / "img.png", grey(seed))
    res = deblur([tmp_path / "a" / "img.png", tmp_path / "b" / "img.png"], tmp_path / "out", "--no-finish")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    for stem in ("a_img", "b_img"):
        assert f"{out / stem}_*" in res.output  # the mapping is printed
        assert json.loads((out / f"{stem}.json").read_text())["input"].endswith(f"{stem[0]}/img.png")
    assert not list(out.glob("*_deconvolved.png"))  # --no-finish
    assert (out / "a_img_restored.png").read_bytes() != (out / "b_img_restored.png").read_bytes()


def test_existing_results_are_kept_unless_overwrite(tmp_path):
    save_image(tmp_path / "x.png", grey(2))
    out = tmp_path / "out"
    assert deblur([tmp_path / "x.png"], out).exit_code == 0
    before = (out / "x_restored.png").stat().st_mtime_ns
    line = one_error_line(res := deblur([tmp_path / "x.png"], out))
    assert res.exit_code == 2 and str(out / "x_") in line and "--overwrite" in line
    assert (out / "x_restored.png").stat().st_mtime_ns == before
    # results gone but the run's checkpoints there: continue it or start again, never mix the two
    for path in out.glob("x*"):
        path.unlink()
    line = one_error_line(res := deblur([tmp_path / "x.png"], out))
    assert res.exit_code == 2 and "holds checkpoints of this same run" in line and "--resume" in line
    res = deblur([tmp_path / "x.png"], out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert "removing the checkpoints of the earlier run" in res.output and (out / "x_restored.png").is_file()


def test_resume_never_continues_another_inputs_run(tmp_path):
    save_image(tmp_path / "img.png", grey(3))
    save_image(tmp_path / "other.png", grey(4))
    out = tmp_path / "out"
    assert deblur([tmp_path / "img.png"], out).exit_code == 0
    res = deblur([tmp_path / "other.png"], out, "--resume")
    assert res.exit_code == 0, res.output
    assert "found only checkpoints of other runs" in res.output and "img.png" in res.output
    record = json.loads((out / "other.json").read_text())
    assert record["timings"]["iterations_run"] == 20  # all its own iterations
    assert (out / "other_restored.png").read_bytes() != (out / "img_restored.png").read_bytes()
    assert len(checkpoint_module.find_runs(out / "checkpoints")) == 2


def test_interrupt_says_where_resume_continues(tmp_path, monkeypatch):
    save_image(tmp_path / "y.png", grey(5))
    out = tmp_path / "out"
    real_save = checkpoint_module.RunCheckpointer.save

    def save_then_interrupt(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C right after the first checkpoint

    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", save_then_interrupt)
    res = deblur([tmp_path / "y.png"], out)
    assert res.exit_code == 130
    assert "expected run time" in res.output  # measured on the first chunk, before the first checkpoint
    assert res.output.strip().splitlines()[-1].startswith("interrupted; --resume (resume=True) will continue from "
                                                          "iteration 10")
    assert not list(out.glob("*.png"))
    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", real_save)
    res = deblur([tmp_path / "y.png"], out, "--resume")
    assert res.exit_code == 0, res.output
    assert "from iteration 10" in res.output
    assert json.loads((out / "y.json").read_text())["timings"]["iterations_run"] == 10


def test_memory_is_checked_before_the_run(tmp_path, monkeypatch):
    save_image(tmp_path / "m.png", grey(6))
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    line = one_error_line(res := deblur([tmp_path / "m.png"], tmp_path / "out"))
    assert res.exit_code == 2 and "this run needs" in line and "0.00 GB available" in line and "what fits" in line
    assert not list((tmp_path / "out").glob("*.png"))


def test_memory_message_names_a_window_that_fits(monkeypatch):
    import jax

    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * 10**9)
    need = memory.MemoryNeed(total=32 * 10**9, arguments=10**9, temporaries=31 * 10**9, exact=True)
    with pytest.raises(memory.NotEnoughMemoryError) as info:
        memory.check_fits(need, jax.devices()[0], image_shape=(4000, 6000, 1), runs=1)
    side = info.value.fitting_window
    assert side == int(np.sqrt(4000 * 6000 * 0.25 * 0.8))
    assert f"window of at most {side}x{side} pixels" in str(info.value) and "32.00 GB" in str(info.value)


def test_memory_estimate_where_the_backend_gives_no_analysis():
    import jax
    import jax.numpy as jnp

    def chunk(x):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ c), None), x, None, length=3)[0]

    x = jax.ShapeDtypeStruct((64, 64), jnp.float32)
    estimate = memory.traced_need(chunk, x)
    exact = memory.program_need(jax.jit(chunk).lower(x).compile())
    assert not estimate.exact and exact.exact
    assert estimate.arguments == exact.arguments == 64 * 64 * 4
    assert 0.5 * exact.total <= estimate.total <= 4 * exact.total  # the same order as the analysis


def test_kernel_window_then_whole_image(tmp_path):
    save_image(tmp_path / "big.png", grey(7, size=SIZE + 8))
    res = deblur([tmp_path / "big.png"], tmp_path / "out", "--region", "4,4,24,24")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    with Image.open(out / "big_window.png") as img:
        assert img.size == (SIZE, SIZE)
    with Image.open(out / "big_deconvolved.png") as img:
        assert (img.mode, img.size) == ("L", (SIZE + 8, SIZE + 8))
    assert json.loads((out / "big.json").read_text())["region"] == {"x": 4, "y": 4, "w": 24, "h": 24}


def test_preset_auto_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setitem(SelfDeblur.presets, "fast", SelfDeblur.presets["tiny"])  # the CPU pick, made tiny here
    save_image(tmp_path / "p.png", grey(8))
    res = run("deblur", tmp_path / "p.png", "-o", tmp_path / "out", "-k", K, "--method", "selfdeblur", "--no-finish",
              "--checkpoint-every", 10)
    assert res.exit_code == 0, res.output
    assert "preset: fast (chosen automatically for cpu" in res.output
    assert json.loads((tmp_path / "out" / "p.json").read_text())["preset"] == "fast"


def test_method_auto_is_map_on_a_cpu_and_says_why(tmp_path):
    save_image(tmp_path / "p.png", grey(9))
    res = run("deblur", tmp_path / "p.png", "-o", tmp_path / "out", "-k", K)
    assert res.exit_code == 0, res.output
    assert "method: map (on a CPU" in res.output
    record = json.loads((tmp_path / "out" / "p.json").read_text())
    assert record["method"] == "map" and record["config"]["nonblind"] == "learned"


@pytest.fixture
def files(tmp_path):
    save_image(tmp_path / "ok.png", grey())
    (tmp_path / "empty.png").write_bytes(b"")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path


@pytest.mark.parametrize("args, says", [
    (["missing.png", "-o", "out", "-k", "5"], "no image file at"),
    ([".", "-o", "out", "-k", "5"], "is a directory"),
    (["empty.png", "-o", "out", "-k", "5"], "empty"),
    (["cut.png", "-o", "out", "-k", "5"], "cannot read image"),
    (["ok.png", "-o", "out", "-k", "50"], "kernel size (50, 50) is larger than the image (24, 24)"),
    (["ok.png", "-o", "out", "-k", "5", "--method", "nope"], "unknown method 'nope'"),
    (["ok.png", "-o", "out", "-k", "5", "--set", "nope=1"], "unknown config field(s) ['nope']"),
    (["ok.png", "-o", "out", "-k", "5", "--method", "selfdeblur", "--set", "lr_milestones=5"],
     "must be a tuple of int, got 5; a valid value: lr_milestones=[400, 600, 800]"),
    (["ok.png", "-o", "a_file", "-k", "5"], "is a file, not a folder"),
    (["ok.png", "-o", "out", "-k", "5", "--iterations", "0"], "--iterations must be at least 1"),
    (["ok.png", "-o", "out", "-k", "5", "--iterations", "-4"], "--iterations must be at least 1"),
    (["ok.png", "-o", "out", "-k", "5", "--checkpoint-every", "0"], "--checkpoint-every must be a positive"),
    (["ok.png", "-o", "out", "-k", "5", "--region", "1,2,3"], "--region must be x,y,w,h"),
    (["ok.png", "-o", "out", "-k", "5", "--preset", "huge"], "unknown preset 'huge'"),
    (["ok.png", "-o", "out", "-k", "abc"], "'-k' / '--kernel-size'"),
    (["ok.png", "-k", "5"], "Missing option '-o' / '--out'"),
])
def test_bad_input_is_one_line_and_status_2(files, monkeypatch, args, says):
    monkeypatch.chdir(files)
    res = run("deblur", *args)
    assert res.exit_code == 2, res.output
    assert says in one_error_line(res)
    assert not (files / "out").exists()  # stopped before writing anything


def test_debug_shows_the_traceback(tmp_path):
    res = run("deblur", tmp_path / "missing.png", "-o", tmp_path / "out", "-k", 5, "--debug")
    assert isinstance(res.exception, FileNotFoundError)  # re-raised, so the traceback is printed


def test_every_command_gets_the_error_handling():
    for command in app.registered_commands:
        assert "debug" in inspect.signature(command.callback).parameters, command.name


def test_unique_names_and_atomic_writes(tmp_path):
    assert outputs.unique_stems(["a/img.png", "b/img.png", "c/x.png"]) == ["a_img", "b_img", "x"]
    assert outputs.unique_stems(["a/img.png", "a/img.png"]) == ["a_img_1", "a_img_2"]
    target = tmp_path / "r.json"
    outputs.write_json(target, {"v": 1})

    def broken(path):
        path.write_text('{"v": 2, "partial')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        outputs._atomic(target, broken)
    assert json.loads(target.read_text()) == {"v": 1}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # and no temporary file is left
    outputs.write_image(tmp_path / "g.png", grey())
    with Image.open(tmp_path / "g.png") as img:
        assert img.mode == "L"
