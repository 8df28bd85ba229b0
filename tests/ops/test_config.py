"""Method configs: overrides, presets and the schedule compression used for short runs."""

import pytest

from jaxdeblur.methods import KoteraConfig, UncertaintyConfig, compress_schedule, override, resolve
from jaxdeblur.config import NEVER
from jaxdeblur.methods.selfdeblur import DIPConfig, SelfDeblur


def test_override_coerces_values_and_names_unknown_fields():
    cfg = override(DIPConfig(), {"lr_milestones": [10, 20], "ssim_from": "30", "lr_image": "0.5"})
    assert cfg.lr_milestones == (10, 20) and cfg.ssim_from == 30 and cfg.lr_image == 0.5
    with pytest.raises(ValueError, match="unknown config field.*'nope'"):
        override(DIPConfig(), {"nope": 1})


def test_resolve_picks_a_preset_and_refuses_unknown_ones():
    assert resolve(SelfDeblur.presets, "fast", None) is SelfDeblur.presets["fast"]
    assert resolve(SelfDeblur.presets, "paper", {"iterations": 7}).iterations == 7
    with pytest.raises(ValueError, match="unknown preset"):
        resolve(SelfDeblur.presets, "huge", None)


def test_compress_schedule_scales_every_switch_point():
    paper = DIPConfig()  # 5000 iterations, milestones 2000/3000/4000, SSIM from 1000
    short = compress_schedule(paper, 1000)
    assert short.iterations == 1000
    assert short.lr_milestones == (400, 600, 800) and short.ssim_from == 200
    assert short.tv_from == 0 and short.kernel_l2_until == 0  # "from the start" / "never" stay
    # the fast preset is exactly the paper's schedule compressed 5x (with smaller networks)
    fast = SelfDeblur.presets["fast"]
    assert (short.lr_milestones, short.ssim_from) == (fast.lr_milestones, fast.ssim_from)


def test_compress_schedule_covers_kotera_and_keeps_never():
    kotera = compress_schedule(KoteraConfig(), 500)  # 10x shorter
    assert (kotera.ssim_from, kotera.tv_from, kotera.kernel_l2_until) == (200, 200, 200)
    assert kotera.coarse_iterations == 50 and kotera.fit_max_iterations == KoteraConfig().fit_max_iterations
    uncertainty = compress_schedule(UncertaintyConfig(), 250)
    assert uncertainty.lr_milestones == (50, 100, 150, 200) and uncertainty.ssim_from == NEVER
    assert compress_schedule(DIPConfig(), 1).lr_milestones == (1, 1, 1)  # never below one iteration
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        compress_schedule(DIPConfig(), 0)


def test_parse_overrides_reads_json_and_keeps_strings():
    from jaxdeblur.config import parse_overrides

    assert parse_overrides(["lr_image=0.005", "lr_milestones=[5, 9]", "name=abc", "flag=true"]) == {
        "lr_image": 0.005, "lr_milestones": [5, 9], "name": "abc", "flag": True}
    assert parse_overrides([]) == {}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_overrides(["iterations"])


@pytest.mark.parametrize("overrides, field, kind, example", [
    ({"lr_milestones": 5}, "lr_milestones", "a tuple of int", "lr_milestones=[2000, 3000, 4000]"),
    ({"lr_milestones": [10, "x"]}, "lr_milestones", "a tuple of int", "lr_milestones=[2000, 3000, 4000]"),
    ({"iterations": 2.5}, "iterations", "an int", "iterations=5000"),
    ({"lr_image": "fast"}, "lr_image", "a float", "lr_image=0.01"),
    ({"lr_image": [1, 2]}, "lr_image", "a float", "lr_image=0.01"),
])
def test_override_errors_name_the_field_its_type_and_a_valid_value(overrides, field, kind, example):
    with pytest.raises(ValueError) as info:
        override(DIPConfig(), overrides)
    message = str(info.value)
    assert f"'{field}'" in message and kind in message and example in message


def test_override_reads_booleans_strictly():
    kotera = KoteraConfig()
    assert override(kotera, {"init": "false"}).init is False and override(kotera, {"init": 1}).init is True
    with pytest.raises(ValueError, match="'init' must be true or false"):
        override(kotera, {"init": "maybe"})


def test_parsed_set_values_go_through_the_same_checks():
    from jaxdeblur.config import parse_overrides

    with pytest.raises(ValueError, match=r"'lr_milestones' must be a tuple of int, got 5"):
        override(DIPConfig(), parse_overrides(["lr_milestones=5"]))
    assert override(DIPConfig(), parse_overrides(["iterations=30", "lr_milestones=[5, 9]"])).lr_milestones == (5, 9)
