"""Connecting (--kubeconfig, KUBECONFIG, contexts, a bad file) and the key material of
`cacerts` staying out of logs, state and Events even when its apply is retried."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.kube.client import ClusterConfigError, load_configuration
from reconciler.targets.kubernetes_command import cacerts_from
from reconciler.up.credentials import temporary_ca
from tests.kube.conftest import Kube
from tests.kube.support import KubeLoop
from tests.run.support import policy_repo


def _two_contexts(kube: Kube, path: Path) -> Path:
    config = json.loads(kube.kubeconfig.read_text())
    config["clusters"].append({"name": "elsewhere", "cluster": {"server": "https://10.9.9.9:6443"}})
    config["contexts"].append(
        {"name": "other", "context": {"cluster": "elsewhere", "user": "tester"}}
    )
    path.write_text(json.dumps(config))
    return path


def test_kubeconfig_flag_env_and_context(
    standin_kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert standin_kube.stand_in is not None
    config = _two_contexts(standin_kube, tmp_path / "two.yaml")
    assert load_configuration(config, None).host == standin_kube.stand_in.url
    assert load_configuration(config, "other").host == "https://10.9.9.9:6443"
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert load_configuration(None, None).host == standin_kube.stand_in.url


def test_a_bad_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("clusters: [")
    for path in (tmp_path / "missing.yaml", tmp_path / "bad.yaml"):
        with pytest.raises(ClusterConfigError) as err:
            load_configuration(path, None)
        assert err.value.code == 2 and f"--kubeconfig {path}: cannot be loaded" in err.value.message
    with pytest.raises(ClusterConfigError) as err:
        load_configuration(tmp_path / "bad.yaml", "no-such-context")
    assert "cannot be loaded" in err.value.message


def test_cacerts_key_material_never_reaches_logs_state_or_events(
    tmp_path: Path, standin_kube: Kube, caplog: pytest.LogCaptureFixture
) -> None:
    assert standin_kube.stand_in is not None
    temporary_ca(tmp_path / "ca", "cluster.local", datetime.now(UTC))
    source = cacerts_from(tmp_path / "ca")
    key = source("istio-system")["data"]["ca-key.pem"]
    retried = standin_kube.stand_in.fail(method="PATCH", plural="secrets", status=503, times=2)
    caplog.set_level(logging.DEBUG)
    loop = KubeLoop(
        policy_repo(tmp_path / "repo"), tmp_path / "state", standin_kube, cacerts=source
    )
    outcome = loop.run()
    assert outcome.ok, outcome
    assert retried.hits == 2 and "503" in caplog.text  # the retries were logged ...
    live = standin_kube.read("v1", "Secret", "istio-system", "cacerts")
    assert live is not None and live["data"]["ca-key.pem"] == key
    seen = caplog.text + (tmp_path / "state" / "state.json").read_text() + repr(loop.target)
    seen += json.dumps(standin_kube.events("istio-system")) + repr(outcome)
    assert key not in seen and "cacerts" not in json.dumps(loop.store.load().inventory)
    again = loop.run()  # ... and an unchanged secret is not written again
    assert again.reason == "Unchanged"
    assert standin_kube.read("v1", "Secret", "istio-system", "cacerts") == live
