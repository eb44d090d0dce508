"""Presets: schema, merging order, validation messages, round trip, shipped presets' costs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from code_cli.errors import ConfigError
from code_cli.presets import RestoreConfig, build_config, config_from_yaml_text, list_presets, load_preset_file


def test_flags_override_preset_override_defaults(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("steps: 50\ndepth: 20\nepsilon: 0.5\n")
    cfg, name = build_config(str(p), {"depth": 7, "epsilon": None})
    assert (cfg.steps, cfg.depth, cfg.epsilon) == (50, 7, 0.5)
    assert cfg.langevin_steps == RestoreConfig().langevin_steps
    assert name == str(p)


def test_round_trip_through_yaml():
    cfg = RestoreConfig(depth=30, extra_corrections=((10, 0.1), (3, 0.05)), cbc=False)
    assert config_from_yaml_text(cfg.to_yaml()) == cfg


def test_auto_keys_round_trip_through_yaml_as_auto():
    cfg, _ = build_config("auto", {"epsilon": 0.3})
    text = cfg.to_yaml()
    assert "depth: auto" in text and "langevin_steps: auto" in text and "epsilon: 0.3" in text
    assert config_from_yaml_text(text) == cfg


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RestoreConfig().steps = 3  # type: ignore[misc]


def test_hash_ignores_batch_size_but_not_pixels_knobs():
    a = RestoreConfig()
    assert a.hash() == RestoreConfig(batch_size=8).hash()
    assert a.hash() != RestoreConfig(epsilon=0.3).hash()


def test_a_later_knob_at_its_old_value_keeps_old_hashes():
    # decode_steps came after runs were logged: at 0 (one DDIM step per level, as before) it is left
    # out of the hash, so --skip-existing still recognises those runs; at 3 it changes the pixels
    a = RestoreConfig(mode="auto", depth=None, langevin_steps=None, epsilon=None)
    assert a.hash() == "38f70ff3dcc2538e"  # this config's hash before the knob existed
    assert a.hash() != replace(a, decode_steps=3).hash()
    assert build_config("auto", {})[0].decode_steps == 3


@pytest.mark.parametrize(
    "text,message",
    [
        ("steps: 10\ndepth: 11\n", "key 'depth' must be in [1, steps=10]"),
        ("langevin_steps: 2.5\n", ":1: key 'langevin_steps' expects int or 'auto', got 2.5"),
        ("depth: auto\n", "key 'depth' can be 'auto' only with mode: auto"),
        ("finish: mean\n", "key 'finish' can be 'mean' only with mode: auto"),
        ("decode_steps: 3\n", "key 'decode_steps' works in auto mode only"),
        ("mode: auto\ndepth: auto\nlangevin_steps: auto\nepsilon: auto\ndecode_steps: -1\n",
         "key 'decode_steps' must be in [0, steps = 100]"),
        ("mode: auto\nmethod: sdedit\ndepth: auto\n", "key 'depth' must be given for method sdedit"),
        ("cbc: 'yes'\n", ":1: key 'cbc' expects bool"),
        ("eta: -1\n", "key 'eta' must be > 0"),
        ("annealing_factor: 1.5\n", "key 'annealing_factor' must be in (0, 1]"),
        ("\n\nquantil: 0.9\n", ":3: unknown key 'quantil' (did you mean 'quantile'?)"),
        ("- 1\n- 2\n", "a preset must be a mapping"),
        ("steps: 10\nnfe: 5\n", "key 'nfe' says 5 but the preset costs"),
        ("extra_corrections: [[20, 0.1]]\n", "key 'extra_corrections' must list (depth, epsilon)"),
        ("!!python/object/apply:os.system ['true']\n", "YAML syntax error"),
    ],
)
def test_bad_presets_name_file_line_and_key(tmp_path, text, message):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        build_config(str(p))
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        build_config("defualt")
    assert "did you mean 'default'" in str(e.value)
    assert "valid presets: " in str(e.value)


def test_every_shipped_preset_loads_and_states_its_true_cost():
    presets = list_presets()
    assert "default" in presets
    for name, description in presets.items():
        assert description, f"preset {name} has no description"
        cfg, _ = build_config(name)
        from code_cli.presets import resolve_preset

        raw = load_preset_file(resolve_preset(name))
        assert raw  # not empty
        assert cfg.nfe > 0
