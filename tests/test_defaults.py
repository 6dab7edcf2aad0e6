"""Every default is declared once (streamcount/defaults.py) and every config agrees with it."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

import pytest

from streamcount import defaults
from streamcount.commands import run as run_cmd
from streamcount.commands.run import RunConfig
from streamcount.fleet.config import FleetConfig, FleetSource
from streamcount.pipeline import PipelineConfig
from streamcount.sources import SourceOptions


def _defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def test_run_flags_default_to_the_run_config() -> None:
    p = argparse.ArgumentParser()
    run_cmd.add_arguments(p)
    flags = vars(p.parse_args([]))
    for name, value in _defaults(RunConfig).items():
        if name in flags and name != "dashboard":  # --no-dashboard is the flag's inverse
            assert flags[name] == value, name


@pytest.mark.parametrize("cls,name,default", [
    (RunConfig, "model", "MODEL"), (RunConfig, "smooth", "SMOOTH"),
    (RunConfig, "batch", "BATCH"), (RunConfig, "reconnect_backoff", "RECONNECT_BACKOFF_S"),
    (RunConfig, "timeout", "OPEN_TIMEOUT_S"), (RunConfig, "metrics_host", "METRICS_HOST"),
    (RunConfig, "web_fps", "WEB_FPS"),
    (PipelineConfig, "batch", "BATCH"), (PipelineConfig, "smooth", "SMOOTH"),
    (SourceOptions, "stride", "STRIDE"), (SourceOptions, "reconnect_max", "RECONNECT_MAX"),
    (SourceOptions, "backoff_base", "RECONNECT_BACKOFF_S"),
    (SourceOptions, "open_timeout_s", "OPEN_TIMEOUT_S"),
    (FleetConfig, "model", "MODEL"), (FleetConfig, "batch", "BATCH"),
    (FleetConfig, "device", "DEVICE"), (FleetSource, "smooth", "SMOOTH"),
])  # fmt: skip
def test_configs_share_one_declaration(cls: type, name: str, default: str) -> None:
    assert _defaults(cls)[name] == getattr(defaults, default)
