"""PyTorch checkpoints without torch: the restricted .pth reader and `import_torch` / `jaxdeblur import-weights`.

Fixtures (written once by experiments/make_nafnet_golden.py with torch 2.13):
nafnet_tiny.pth = torch.save({"params": state_dict}) of the reference NAFNet
of tests/nets/fixtures/nafnet_golden.npz (whose out_float32 is that module's
PyTorch output); pth_kinds.pth / .npz: tensors of many kinds and their values.
kernel_space_tiny.pth (experiments/make_kernel_space_golden.py): torch.save(state_dict)
of the reference KernelWizard of tests/nets/fixtures/kernel_space_golden.npz.
ufpnet_tiny.pth (experiments/make_ufpnet_golden.py): torch.save({"params": state_dict}) of the
reference UFPNet_code_uncertainty of tests/nets/fixtures/ufpnet_golden.npz.
"""

import os
import pickle
import zipfile
from pathlib import Path

import jax
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

import jaxdeblur.models as models
from jaxdeblur.cli import app
from jaxdeblur.models.pth import read_pth, read_state_dict, state_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAFNET_PTH = FIXTURES / "nafnet_tiny.pth"
KINDS_PTH = FIXTURES / "pth_kinds.pth"
GOLDEN = Path(__file__).resolve().parents[1] / "nets" / "fixtures" / "nafnet_golden.npz"
KERNEL_SPACE_PTH = FIXTURES / "kernel_space_tiny.pth"
KERNEL_SPACE_GOLDEN = Path(__file__).resolve().parents[1] / "nets" / "fixtures" / "kernel_space_golden.npz"
UFPNET_PTH = FIXTURES / "ufpnet_tiny.pth"
UFPNET_GOLDEN = Path(__file__).resolve().parents[1] / "nets" / "fixtures" / "ufpnet_golden.npz"


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN)
    return {"x": data["x"].transpose(0, 2, 3, 1), "out": data["out_float32"].transpose(0, 2, 3, 1)}


def test_every_tensor_kind_is_rebuilt():
    obj = read_pth(KINDS_PTH)
    assert obj["epoch"] == 3 and obj["note"] == "kinds"
    found, expected = state_dict(obj), np.load(KINDS_PTH.with_suffix(".npz"))
    assert sorted(found) == sorted(expected.files)
    dtypes = {"half": np.float16, "bfloat": ml_dtypes.bfloat16, "long": np.int64, "flags": np.bool_,
              "double": np.float64}
    for name in expected.files:
        assert found[name].dtype == np.dtype(dtypes.get(name, np.float32)), name
        assert found[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(found[name].astype(expected[name].dtype), expected[name], err_msg=name)
    np.testing.assert_array_equal(found["transposed"], found["base"].T)  # views of one storage, strided
    np.testing.assert_array_equal(found["column"], found["base"][:, 2])


def test_wrapper_keys_and_module_prefix():
    params = read_state_dict(NAFNET_PTH)  # {"params": ...}, found
    assert "intro.weight" in params and len(params) == 100
    assert read_state_dict(NAFNET_PTH, key="params").keys() == params.keys()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in params.items()}, "epoch": 1}
    assert state_dict(wrapped).keys() == params.keys()
    with pytest.raises(ValueError, match="no key 'params_ema'"):
        read_state_dict(NAFNET_PTH, key="params_ema")
    with pytest.raises(ValueError, match="no state dict of tensors"):
        state_dict({"epoch": 1, "note": "x"})


def _zip_with_pickle(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
    return path


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_the_unpickler_runs_no_code(tmp_path):
    target = tmp_path / "created-by-the-pickle"
    path = _zip_with_pickle(tmp_path / "evil.pth", pickle.dumps({"w": _Evil(str(target))}, protocol=2))
    with pytest.raises(ValueError, match=r"refers to posix\.mkdir"):
        read_pth(path)
    assert not target.exists()


def test_corrupt_files_are_one_clear_error(tmp_path):
    raw = NAFNET_PTH.read_bytes()
    (tmp_path / "truncated.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a PyTorch checkpoint in zip format .a truncated or corrupt zip"):
        read_pth(tmp_path / "truncated.pth")
    # one byte of a stored tensor changed: the zip's CRC catches it
    with zipfile.ZipFile(NAFNET_PTH) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    flipped = bytearray(raw)
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + i: info.header_offset + i + 2], "little")
                           for i in (26, 28))  # the local header's lengths
    flipped[info.header_offset + 30 + name_len + extra_len + 1] ^= 0xFF
    (tmp_path / "flipped.pth").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupt file .BadZipFile"):
        read_pth(tmp_path / "flipped.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint in zip format$"):
        read_pth(tmp_path / "text.pth")


def test_imported_nafnet_reproduces_the_reference_output(tmp_path, golden):
    pretrained = models.import_torch("nafnet", NAFNET_PTH, out=tmp_path)
    folder = tmp_path / "nafnet" / "nafnet_tiny"
    assert pretrained.folder == folder and (folder / "manifest.json").is_file()
    manifest = pretrained.manifest
    assert manifest["data"]["file"] == "nafnet_tiny.pth" and len(manifest["data"]["sha256"]) == 64
    assert manifest["parameters"] == 5759
    cfg = pretrained.config
    assert (cfg.channels, cfg.width, cfg.enc_blocks, cfg.middle_blocks, cfg.dec_blocks) == (3, 4, (1, 1), 1, (1, 1))
    out = np.asarray(pretrained.model(golden["x"]))  # the network, unclamped
    np.testing.assert_allclose(out, golden["out"], rtol=1e-5, atol=1e-6)
    restored = models.load("nafnet-nafnet_tiny", root=tmp_path)(golden["x"])  # read back as a user does
    np.testing.assert_allclose(restored, np.clip(golden["out"], 0, 1), rtol=1e-5, atol=1e-6)
    in_memory = models.import_torch("nafnet", NAFNET_PTH)
    assert in_memory.folder is None
    np.testing.assert_array_equal(np.asarray(in_memory.model(golden["x"])), out)


def test_imported_kernel_space_reproduces_the_reference(tmp_path):
    data = np.load(KERNEL_SPACE_GOLDEN)
    sharp, blurred = (data[k].transpose(0, 2, 3, 1) for k in ("sharp", "blurred"))
    pretrained = models.import_torch("kernel_space", KERNEL_SPACE_PTH, out=tmp_path)
    assert pretrained.folder == tmp_path / "kernel_space" / "kernel_space_tiny"
    assert pretrained.manifest["parameters"] == 13291 and len(pretrained.manifest["data"]["sha256"]) == 64
    cfg = pretrained.config
    assert (cfg.channels, cfg.nf, cfg.code_dim, cfg.depth, cfg.feature_downsamples, cfg.all_biases) == (
        3, 4, 8, 3, 1, False)
    code = np.asarray(pretrained.fn.encode(sharp, blurred))
    np.testing.assert_allclose(code, data["code_float32"].transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    net = pretrained.model  # F, unclamped, as PyTorch's adaptKernel
    out = np.asarray(net.blur(sharp, code))
    np.testing.assert_allclose(out, data["out_float32"].transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    again = models.load("kernel_space-kernel_space_tiny", root=tmp_path)  # read back as a user does
    np.testing.assert_array_equal(np.asarray(again.fn.encode(sharp, blurred)), code)
    assert "not a kernel_space checkpoint: not a blur-kernel-space" in str(
        pytest.raises(ValueError, models.import_torch, "kernel_space", NAFNET_PTH).value)


@pytest.mark.slow  # ~20 s of compile; UFPNet's fidelity itself is checked by tests/nets/test_ufpnet_golden.py
def test_imported_ufpnet_reproduces_the_reference(tmp_path):
    data = np.load(UFPNET_GOLDEN)
    x = data["x"].transpose(0, 2, 3, 1)  # 14 x 18, reflect-padded to 16 x 20 inside
    pretrained = models.import_torch("ufpnet", UFPNET_PTH, out=tmp_path)
    assert pretrained.folder == tmp_path / "ufpnet" / "ufpnet_tiny"
    assert pretrained.manifest["parameters"] == 15853 - 333  # the unused kernel_down.1 (9 x 9 x 2 x 2 + 9) dropped
    cfg = pretrained.config
    assert (cfg.width, cfg.enc_blocks, cfg.conditioned_levels, cfg.prior.kernel_size, cfg.prior.raw_decode) == (
        4, (1, 1), 2, 3, True)
    out = nnx.jit(lambda model, x: model(x, None))(pretrained.model, x)  # no code noise, unclamped
    np.testing.assert_allclose(np.asarray(out.kernels), data["kernels_float32"].reshape(1, 16, 20, 3, 3)[:, :14, :18],
                               rtol=1e-4, atol=1e-5 * np.abs(data["kernels"]).max())
    np.testing.assert_allclose(np.asarray(out.restored), data["restored_float32"].transpose(0, 2, 3, 1), rtol=1e-4,
                               atol=1e-5)
    again = models.load("ufpnet-ufpnet_tiny", root=tmp_path)  # read back as a user does: the same variables
    for a, b in zip(jax.tree.leaves(nnx.state(again.model)), jax.tree.leaves(nnx.state(pretrained.model))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(again.fn).__name__ == "UFPNetRestorer"  # what restore --model ufpnet-... runs
    assert "not a ufpnet checkpoint: not a UFPNet state dict" in str(
        pytest.raises(ValueError, models.import_torch, "ufpnet", KERNEL_SPACE_PTH).value)


def run(*args):
    return CliRunner().invoke(app, ["import-weights", *[str(a) for a in args]])


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_cli_writes_loadable_weights_and_says_how_to_use_them(tmp_path):
    result = run("nafnet", NAFNET_PTH, "-o", tmp_path, "--preset", "gopro_tiny")
    assert result.exit_code == 0, result.output
    assert "NAFNet width 4, 3 channels" in result.output and "nafnet-gopro_tiny" in result.output
    assert models.available(root=tmp_path) == ["nafnet-gopro_tiny"]
    assert "exists; pass --overwrite" in one_error_line(run("nafnet", NAFNET_PTH, "-o", tmp_path,
                                                            "--preset", "gopro_tiny"))


def test_cli_errors_are_one_line(tmp_path):
    assert "is not a nafnet checkpoint: not a NAFNet state dict" in one_error_line(
        run("nafnet", KINDS_PTH, "-o", tmp_path))
    (tmp_path / "bad.pth").write_bytes(NAFNET_PTH.read_bytes()[:5000])
    assert "truncated or corrupt zip" in one_error_line(run("nafnet", tmp_path / "bad.pth", "-o", tmp_path))
    assert "no PyTorch importer for model 'region'" in one_error_line(run("region", NAFNET_PTH, "-o", tmp_path))
    assert "no such file" in one_error_line(run("nafnet", tmp_path / "missing.pth", "-o", tmp_path))
    assert "no '-'" in one_error_line(run("nafnet", NAFNET_PTH, "-o", tmp_path, "--preset", "a-b"))
    assert not (tmp_path / "nafnet").exists()
