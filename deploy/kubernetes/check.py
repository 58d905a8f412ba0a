#!/usr/bin/env python3
"""Renders every overlay under deploy/kubernetes/overlays with `kubectl kustomize` (offline) and
checks what a deployment of Orcastra needs: resources on every container, the orchestrator's
probes on /readyz and /healthz at the port its http-address listens on, a PodDisruptionBudget that
lets a node drain, one worker Deployment per Orcastra namespace whose terminationGracePeriodSeconds
outlasts its drain (worker grace-period + 15s), a migration Job, and references to the ConfigMap
and Secret that exist. With ORCASTRA_BIN (the folder of a built `orcastra`, as for
clients/python/run-tests.sh), each rendered orcastra.yaml is also read by `orcastra config show`,
which refuses unknown keys and wrong types.

Usage: python3 deploy/kubernetes/check.py [OVERLAY_DIR ...]   (exit 1 on any problem)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
HAND_BACK_MARGIN = 15  # seconds after the grace period: hand-back, deregistration, a slow connection


def seconds(text):
    """`30s`, `1m`, `1m30s`, `500ms`, `2h` -> seconds (a float)."""
    total, found = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        found = True
    if not found:
        raise ValueError(f"not a duration: {text!r}")
    return total


def setting(config, scope, key, default=None):
    """A key of orcastra.yaml as a process of `scope` reads it: the scope's own, then the top level;
    `a-b` may also be written nested as `a: {b: …}`."""
    def lookup(mapping):
        if not isinstance(mapping, dict):
            return None
        if key in mapping:
            return mapping[key]
        head, _, rest = key.partition("-")
        if rest and isinstance(mapping.get(head), dict):
            return lookup_in(mapping[head], rest)
        return None

    def lookup_in(mapping, rest):
        if rest in mapping:
            return mapping[rest]
        head, _, tail = rest.partition("-")
        if tail and isinstance(mapping.get(head), dict):
            return lookup_in(mapping[head], tail)
        return None

    for place in ((config or {}).get(scope), config):
        value = lookup(place)
        if value is not None:
            return value
    return default


def env_value(container, name):
    for entry in container.get("env", []) or []:
        if entry.get("name") == name:
            return entry.get("value")
    return None


def check_overlay(directory, problems, orcastra_bin):
    def problem(message):
        problems.append(f"{os.path.relpath(directory)}: {message}")

    rendered = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True, timeout=120)
    if rendered.returncode != 0:
        problem(f"kubectl kustomize failed: {rendered.stderr.strip()}")
        return
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)

    config_maps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"] for d in by_kind.get("Secret", [])}
    configs = {}
    for name, config_map in config_maps.items():
        text = (config_map.get("data") or {}).get("orcastra.yaml")
        if text is None:
            continue
        configs[name] = yaml.safe_load(text) or {}
        if orcastra_bin:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
                handle.write(text)
            try:
                shown = subprocess.run([orcastra_bin, "config", "show", "--config", handle.name],
                                       capture_output=True, text=True, timeout=60,
                                       env={k: v for k, v in os.environ.items() if not k.startswith("ORCASTRA_")})
            finally:
                os.unlink(handle.name)
            if shown.returncode != 0:
                problem(f"ConfigMap {name}'s orcastra.yaml is refused by orcastra: {shown.stderr.strip()}")

    workloads = by_kind.get("Deployment", []) + by_kind.get("Job", [])
    orchestrators, workers, migrations = [], [], []
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        config = None
        for volume in pod.get("volumes", []) or []:
            if "configMap" in volume:
                reference = volume["configMap"]["name"]
                if reference not in config_maps:
                    problem(f"{name} mounts ConfigMap {reference}, which the overlay does not render")
                config = configs.get(reference, config)
        for container in pod["containers"]:
            label = f"{workload['kind']} {name}, container {container['name']}"
            resources = container.get("resources") or {}
            for part, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
                if not (resources.get(part) or {}).get(key):
                    problem(f"{label} has no resources.{part}.{key}")
            for source in container.get("envFrom", []) or []:
                reference = (source.get("secretRef") or {}).get("name")
                if reference and reference not in secrets:
                    problem(f"{label} reads Secret {reference}, which the overlay does not render")
            command = " ".join(container.get("command", []) + container.get("args", []))
            entry = (workload, pod, container, config)
            if command.startswith("orcastra-orchestrator"):
                orchestrators.append(entry)
            elif command.startswith("orcastra-worker"):
                workers.append(entry)
            elif command.startswith("orcastra migrate"):
                migrations.append(entry)

    if not migrations:
        problem("no Job runs `orcastra migrate`")
    for workload, pod, container, _ in migrations:
        if pod.get("restartPolicy") not in ("OnFailure", "Never"):
            problem(f"Job {workload['metadata']['name']} needs restartPolicy OnFailure or Never")

    if not orchestrators:
        problem("no Deployment runs orcastra-orchestrator")
    for workload, pod, container, config in orchestrators:
        name = workload["metadata"]["name"]
        address = setting(config, "orchestrator", "http-address") or env_value(container, "ORCASTRA_HTTP_ADDRESS")
        if not address:
            problem(f"{name}: no http-address in its orcastra.yaml, so no API and nothing for the probes to reach")
            continue
        port = int(str(address).rsplit(":", 1)[1])
        named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", []) or []}
        for probe_name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            probe = (container.get(probe_name) or {}).get("httpGet")
            if not probe:
                problem(f"{name} has no {probe_name} with httpGet {path}")
                continue
            if probe.get("path") != path:
                problem(f"{name}'s {probe_name} asks {probe.get('path')}, not {path}")
            probe_port = named_ports.get(probe["port"], probe["port"])
            if probe_port != port:
                problem(f"{name}'s {probe_name} reaches port {probe_port}, but http-address listens on {port}")
        labels = workload["spec"]["template"]["metadata"].get("labels", {})
        budgets = [b for b in by_kind.get("PodDisruptionBudget", [])
                   if b["spec"]["selector"].get("matchLabels", {}).items() <= labels.items()]
        if not budgets:
            problem(f"no PodDisruptionBudget selects the pods of {name}")
        replicas = workload["spec"].get("replicas", 1)
        for budget in budgets:
            minimum = budget["spec"].get("minAvailable")
            if isinstance(minimum, int) and minimum >= replicas:
                problem(f"PodDisruptionBudget {budget['metadata']['name']} wants {minimum} of {replicas} orchestrators: no node could drain")

    if not workers:
        problem("no Deployment runs orcastra-worker")
    namespaces = {}
    for workload, pod, container, config in workers:
        name = workload["metadata"]["name"]
        namespace = env_value(container, "ORCASTRA_NAMESPACE") or setting(config, "worker", "namespace")
        if not namespace or namespace == "CHANGE-ME":
            problem(f"{name} serves no Orcastra namespace (set ORCASTRA_NAMESPACE)")
        elif namespace in namespaces:
            problem(f"{name} and {namespaces[namespace]} both serve namespace {namespace}: one Deployment per namespace")
        else:
            namespaces[namespace] = name
        grace = seconds(env_value(container, "ORCASTRA_GRACE_PERIOD") or setting(config, "worker", "grace-period", "30s"))
        termination = pod.get("terminationGracePeriodSeconds", 30)
        if termination < grace + HAND_BACK_MARGIN:
            problem(f"{name}: terminationGracePeriodSeconds {termination} is shorter than the worker's grace-period "
                    f"({grace:g}s) + {HAND_BACK_MARGIN}s to hand back and deregister")
    return len(documents)


def main(arguments):
    if shutil.which("kubectl") is None:
        print("deploy/kubernetes/check.py: SKIPPED, kubectl is not installed (it comes with this project's "
              "machine image; Debian's kubernetes-client 1.20 embeds a kustomize too old for these files)")
        return 0
    overlays = arguments or sorted(
        os.path.join(HERE, "overlays", name) for name in os.listdir(os.path.join(HERE, "overlays")))
    orcastra_bin = os.path.join(os.environ["ORCASTRA_BIN"], "orcastra") if os.environ.get("ORCASTRA_BIN") else None
    if orcastra_bin and not os.access(orcastra_bin, os.X_OK):
        print(f"deploy/kubernetes/check.py: {orcastra_bin} is not an executable; build first")
        return 1
    problems = []
    for overlay in overlays:
        count = check_overlay(overlay, problems, orcastra_bin)
        if count:
            print(f"rendered {os.path.relpath(overlay)}: {count} objects")
    for message in problems:
        print(f"problem: {message}")
    print(f"deploy/kubernetes: {len(overlays)} overlays, {len(problems)} problems"
          + ("" if orcastra_bin else " (orcastra.yaml not read by orcastra: set ORCASTRA_BIN)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
