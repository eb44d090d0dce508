"""The restore configuration: schema, YAML presets, and flags over preset over defaults.

A preset is a YAML mapping of RestoreConfig fields plus a `description` and an
optional `nfe` comment that is checked against the real cost. Unknown keys,
wrong types and out-of-range values are errors naming the file, the line and
the key, with the closest valid key suggested for typos.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from code_cli.cost import (
    AUTO_ENCODE_LANGEVIN_STEPS,
    AUTO_LINE_LANGEVIN_STEPS,
    MODEL_AUTO,
    auto_calls,
    code_calls,
    prior_choice_calls,
    sdedit_calls,
)
from code_cli.errors import ConfigError

DEFAULT_PRESET = "auto"

# Knobs auto mode chooses per image when the preset says "auto" (None here) and no flag gives them.
AUTO_KEYS = ("depth", "epsilon", "langevin_steps")
# Knobs added after runs were logged, with their neutral value: at it they stay out of the config hash,
# so `--skip-existing` still recognises outputs made before the knob existed.
LATER_KNOBS = {"strength": 1.0, "page": False, "decode_steps": 0}
# Auto never edits deeper than this fraction of the grid (t = 199 of 1000 on the DDPM schedules): the
# noise corruptions measured sit below t = 120, and deeper edits repaint the photograph.
AUTO_MAX_DEPTH_FRACTION = 0.2


@dataclass(frozen=True)
class RestoreConfig:
    """Every knob of one run; frozen, hashed into the log, written as YAML beside the outputs."""

    model: str = "code-prior-s"
    method: str = "code"  # code | sdedit
    mode: str = "fixed"  # fixed | auto (choose depth, step and whether to edit per image; docs/auto.md); CODE only
    steps: int = 100  # N, grid size for encode/decode
    depth: int | None = 6  # L, latent level (SDEdit: t0 level); None ("auto" in YAML): auto mode chooses
    langevin_steps: int | None = 20  # K; None: auto mode chooses
    epsilon: float | None = 0.2  # first Langevin step relative to sigma_t^2; None: auto mode chooses
    finish: str = "sample"  # auto mode: sample (ODE decode) | mean (one-step clean estimate, higher PSNR)
    # auto mode, sample finish after a noise entry: 0 decodes with one DDIM step per grid level; n > 0
    # with DPM-Solver++(2M) in n steps (at most the level's depth; method/solver.py, docs/auto.md)
    decode_steps: int = 0
    # auto | on | off: edit a low-contrast image on the training photographs' range (method/range_map.py);
    # auto: for fixed-depth edits, not for auto mode's noise-matched ones
    range_map: str = "auto"
    # auto mode: how much it acts. s scales the noise it leaves alone (floors / s) and the level it
    # enters at (its multiple of the estimate x s); 1 is the measured rule (docs/auto.md, "Strength")
    strength: float = 1.0
    # auto mode on printed pages (the `doc` preset; method/page.py): flatten uneven or faded pages
    # before auto's own rule
    page: bool = False
    annealing_stages: int = 4  # A
    annealing_factor: float = 0.8  # c
    extra_corrections: tuple[tuple[int, float], ...] = ()  # shallower (depth, epsilon) pairs, K steps each
    thresholding: bool = True
    quantile: float = 0.98  # q
    max_threshold: float = 1.3  # s_max
    cbc: bool = True
    cbc_everywhere: bool = False
    eta: float = 1.7
    jitter: float = 0.01
    seed: int = 0
    samples: int = 1
    batch_size: int = 1
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16; auto: see pipeline.resolve_dtype
    size_policy: str = "auto"  # auto | native | resize
    tile: int = 0  # 0 = automatic (tiles only above the memory budget); N = tiles of N x N pixels

    @property
    def nfe(self) -> int:
        """Network calls per image sample; in auto mode the most it can spend (an unedited image costs 0)."""
        routing = prior_choice_calls() if self.model == MODEL_AUTO else 0
        if self.method == "sdedit":
            return routing + sdedit_calls(self.depth)
        if self.mode == "auto":
            return routing + self._auto_nfe_bound()
        return routing + code_calls(self.depth, [self.langevin_steps] * (1 + len(self.extra_corrections)))

    @property
    def auto_mode(self) -> bool:
        """Whether auto mode chooses per image (it runs with CODE; SDEdit takes the depth as given)."""
        return self.mode == "auto" and self.method == "code"

    @property
    def maps_range(self) -> bool:
        """Whether a low-contrast image is edited on the training range (method/range_map.py): "auto" maps
        fixed-depth edits only, as auto mode's level follows the noise on the image's own scale."""
        return self.range_map == "on" or (self.range_map == "auto" and not self.auto_mode)

    @property
    def auto_max_depth(self) -> int:
        return max(1, int(self.steps * AUTO_MAX_DEPTH_FRACTION))

    def _auto_nfe_bound(self) -> int:
        # the costliest choice auto can make; tests/test_auto.py checks it bounds every choice
        sample = self.finish == "sample"
        if self.depth is not None:  # a given depth is reached by ODE inversion
            K = AUTO_ENCODE_LANGEVIN_STEPS if self.langevin_steps is None else self.langevin_steps
            return auto_calls(True, self.depth, K, encode=True, sample=sample)
        # Langevin steps: as given, else the most auto picks (line noise takes some, white noise none)
        K = AUTO_LINE_LANGEVIN_STEPS if self.langevin_steps is None else self.langevin_steps
        return auto_calls(True, self.auto_max_depth, K, encode=False, sample=sample, decode_steps=self.decode_steps)

    def hash(self) -> str:
        """Hash of everything that changes the pixels (not batch size, device choice or sample count)."""
        d = asdict(self)
        for k in ("batch_size", "samples"):
            d.pop(k)
        for k, neutral in LATER_KNOBS.items():
            if d[k] == neutral:
                d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        d = asdict(self)
        d["extra_corrections"] = [list(p) for p in self.extra_corrections]
        d.update({k: "auto" for k in AUTO_KEYS if d[k] is None})
        return yaml.safe_dump(d, sort_keys=False)


_FIELDS = {f.name: f for f in fields(RestoreConfig)}
_CHOICES = {
    "method": ("code", "sdedit"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "dtype": ("auto", "float32", "float16", "bfloat16"),
    "size_policy": ("auto", "native", "resize"),
    "mode": ("fixed", "auto"),
    "finish": ("sample", "mean"),
    "range_map": ("auto", "on", "off"),
}
_META_KEYS = ("description", "nfe")


def _subject(where: str, key: str) -> str:
    """What an error is about: "--steps:" for a flag the user typed, "file:3: key 'steps'" otherwise."""
    return f"{where}:" if where.startswith("--") else f"{where}: key '{key}'"


def _coerce(key: str, value: Any, where: str) -> Any:
    f = _FIELDS[key]
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    expects = kind
    if kind.endswith(" | None"):  # the auto keys: "auto" leaves the value to auto mode
        if value == "auto" or value is None:
            return None
        kind = kind.removesuffix(" | None")
        expects = f"{kind} or 'auto'"
    bad = ConfigError(f"{_subject(where, key)} expects {expects}, got {value!r}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if kind == "str":
        if isinstance(value, bool) and key in _CHOICES and {"on", "off"} <= set(_CHOICES[key]):
            value = "on" if value else "off"  # YAML 1.1 reads an unquoted on / off as true / false
        if not isinstance(value, str):
            raise bad
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f"{_subject(where, key)} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        return value
    # extra_corrections: list of [depth, epsilon]
    try:
        return tuple((int(d), float(e)) for d, e in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_subject(where, key)} expects a list of [depth, epsilon] pairs, got {value!r}") from None


def validate(cfg: RestoreConfig, where: str = "config", origins: dict[str, str] | None = None) -> RestoreConfig:
    """Range checks that need several fields; raises ConfigError naming where the bad value came from.

    `origins` maps a key to what the user typed it in: a flag ("--steps") or a preset line
    ("my.yaml:3"). A flag's error names the flag; any other value names `where` and the key.
    """
    origins = origins or {}

    def need(ok: bool, key: str, what: str) -> None:
        if ok:
            return
        src = origins.get(key, where)
        if key == "depth" and src != "--depth" and origins.get("steps") == "--steps":
            # depth came from the preset, --steps from the user: the flag is what broke it
            raise ConfigError(f"--steps: must be >= depth {cfg.depth} (from {src}), got {cfg.steps}")
        raise ConfigError(f"{_subject(src, key)} {what}, got {getattr(cfg, key)!r}")

    need(1 <= cfg.steps <= 1000, "steps", "must be in [1, 1000]")
    for key in AUTO_KEYS:
        need(cfg.mode == "auto" or getattr(cfg, key) is not None, key, "can be 'auto' only with mode: auto")
    need(cfg.mode == "auto" or cfg.finish == "sample", "finish", "can be 'mean' only with mode: auto")
    need(0 <= cfg.decode_steps <= cfg.steps, "decode_steps", f"must be in [0, steps = {cfg.steps}]")
    need(cfg.decode_steps == 0 or cfg.mode == "auto", "decode_steps", "works in auto mode only")
    need(cfg.mode == "fixed" or not cfg.extra_corrections, "mode", "auto cannot take extra_corrections")
    need(0 < cfg.strength <= 4, "strength", "must be in (0, 4]")
    need(not cfg.page or cfg.mode == "auto", "page", "works in auto mode only")
    need(cfg.strength == 1.0 or cfg.mode == "auto", "strength",
         "works in auto mode only (a fixed preset's depth says how much it edits: give --depth)")
    if cfg.method == "sdedit" and cfg.depth is None and origins.get("method") == "--method":
        # the user asked for SDEdit over a preset that leaves the depth to auto: say what to add
        raise ConfigError("--method sdedit: needs --depth (the preset leaves the depth to auto mode)")
    need(cfg.method == "code" or cfg.depth is not None, "depth", "must be given for method sdedit")
    need(cfg.depth is None or 1 <= cfg.depth <= cfg.steps, "depth", f"must be in [1, steps={cfg.steps}]")
    need(cfg.langevin_steps is None or cfg.langevin_steps >= 0, "langevin_steps", "must be >= 0")
    need(cfg.epsilon is None or cfg.epsilon >= 0, "epsilon", "must be >= 0")
    need(cfg.annealing_stages >= 1, "annealing_stages", "must be >= 1")
    need(0 < cfg.annealing_factor <= 1, "annealing_factor", "must be in (0, 1]")
    need(0 < cfg.quantile <= 1, "quantile", "must be in (0, 1]")
    need(cfg.max_threshold >= 1, "max_threshold", "must be >= 1")
    need(cfg.eta > 0, "eta", "must be > 0")
    need(cfg.jitter >= 0, "jitter", "must be >= 0")
    need(cfg.samples >= 1, "samples", "must be >= 1")
    need(cfg.batch_size >= 1, "batch_size", "must be >= 1")
    need(cfg.seed >= 0, "seed", "must be >= 0")
    need(cfg.tile == 0 or cfg.tile >= 32, "tile", "must be 0 (automatic) or >= 32")
    prev = cfg.depth or 0
    for d, e in cfg.extra_corrections:
        need(0 < d < prev and e >= 0, "extra_corrections",
             "must list (depth, epsilon) with depths decreasing below depth")
        prev = d
    return cfg


def preset_dir() -> Path:
    """presets/ is installed as the package code_cli.presets_data; in a source
    tree on sys.path (tests, `python -m`) it is the folder beside code_cli/."""
    try:
        return Path(str(resources.files("code_cli.presets_data")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> dict[str, str]:
    """name -> description of the shipped presets."""
    out = {}
    for p in sorted(preset_dir().glob("*.yaml")):
        data = yaml.safe_load(p.read_text()) or {}
        out[p.stem] = str(data.get("description", "")).strip()
    return out


def resolve_preset(spec: str) -> Path:
    """A preset name or a path to a YAML file."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"{spec}: preset file not found")
        return p
    path = preset_dir() / f"{spec}.yaml"
    if not path.is_file():
        names = ", ".join(list_presets())
        hint = difflib.get_close_matches(spec, list(list_presets()), n=1)
        did = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ConfigError(f"unknown preset '{spec}'{did}; valid presets: {names}")
    return path


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of each top-level key."""


def _mapping_with_lines(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    data = loader.construct_mapping(node, deep=True)
    data["__lines__"] = lines
    return data


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


def load_preset_file(path: Path) -> dict[str, Any]:
    """The preset's fields, validated one by one; errors name file, line and key."""
    return _load_preset_lines(path)[0]


def _load_preset_lines(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The preset's fields and, for each, "file:line" where it was set."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: YAML syntax error: {getattr(e, 'problem', e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read preset ({e.__class__.__name__})") from None
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of keys to values")
    lines = raw.pop("__lines__", {})
    out = {}
    for key, value in raw.items():
        where = f"{path}:{lines.get(key, '?')}"
        if key in _META_KEYS:
            continue
        if key not in _FIELDS:
            hint = difflib.get_close_matches(str(key), list(_FIELDS), n=1)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{where}: unknown key '{key}'{did}")
        out[key] = _coerce(key, value, where)
    if "nfe" in raw:
        cfg = replace(RestoreConfig(), **out)
        if raw["nfe"] != cfg.nfe:
            raise ConfigError(
                f"{path}:{lines.get('nfe', '?')}: key 'nfe' says {raw['nfe']} but the preset costs {cfg.nfe}")
    return out, {key: f"{path}:{lines.get(key, '?')}" for key in out}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> tuple[RestoreConfig, str]:
    """defaults <- preset <- flags (None means 'not given'). Returns the config and the preset's name."""
    spec = preset or DEFAULT_PRESET
    path = resolve_preset(spec)
    values, origins = _load_preset_lines(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            flag = f"--{key.replace('_', '-')}"
            values[key] = _coerce(key, value, flag)
            origins[key] = flag
    name = path.stem if path.parent == preset_dir() else str(path)
    return validate(replace(RestoreConfig(), **values), str(path), origins), name


def config_from_yaml_text(text: str) -> RestoreConfig:
    """Read back what RestoreConfig.to_yaml wrote (round trip)."""
    data = yaml.safe_load(text)
    return replace(RestoreConfig(), **{k: _coerce(k, v, "config") for k, v in data.items()})
