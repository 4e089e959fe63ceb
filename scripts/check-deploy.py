#!/usr/bin/env python3
"""Checks deploy/ without a Docker engine or a cluster (scripts/check-deploy.sh runs it):
the CloudNativePG resources against deploy/schemas/cnpg-cluster.schema.json; every HPA's
external metrics against what quad exports (metric names and label keys in
Sources/Observability); the Deployments' wiring (each serves one context, probes its health
service, reads QUAD_DATABASE_URL from the Secret CloudNativePG makes, runs as non-root); the
compose file's shape. Kubernetes' own kinds are checked by kubernetes-validate beforehand."""
import glob
import json
import os
import re
import sys

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
problems = []


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def exported_metrics():
    """metric name -> label keys, from the Gauge/Counter/Timer calls in Sources/Observability."""
    metrics = {}
    for path in glob.glob(os.path.join(ROOT, "Sources/Observability/*.swift")):
        text = open(path).read()
        for m in re.finditer(r'(?:Gauge|Counter|Timer)\(label: "([a-z_]+)"(?:, dimensions: \[([^\]]*)\])?', text):
            keys = set(re.findall(r'\("([a-z_]+)",', m.group(2) or ""))
            metrics.setdefault(m.group(1), set()).update(keys)
    return metrics


def main():
    schema = json.load(open(os.path.join(ROOT, "deploy/schemas/cnpg-cluster.schema.json")))
    metrics = exported_metrics()
    manifests = sorted(glob.glob(os.path.join(ROOT, "deploy/k8s/*.yaml")))
    kinds = {}
    secret_names = set()
    for path in manifests:
        name = os.path.relpath(path, ROOT)
        for doc in documents(path):
            kind = doc.get("kind")
            kinds.setdefault(kind, []).append(doc)
            if doc.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
                try:
                    jsonschema.validate(doc, schema)
                except jsonschema.ValidationError as e:
                    problems.append(f"{name}: {kind} {doc.get('metadata', {}).get('name')}: {e.message} at {'/'.join(map(str, e.absolute_path))}")
                if kind == "Cluster":
                    secret_names.add(doc["metadata"]["name"] + "-app")
            if kind == "HorizontalPodAutoscaler":
                for metric in doc["spec"].get("metrics", []):
                    if metric["type"] != "External":
                        continue
                    m = metric["external"]["metric"]
                    if m["name"] not in metrics:
                        problems.append(f"{name}: HPA {doc['metadata']['name']} scales on {m['name']}, which quad does not export")
                        continue
                    for key in m.get("selector", {}).get("matchLabels", {}):
                        if key not in metrics[m["name"]]:
                            problems.append(f"{name}: HPA {doc['metadata']['name']}: {m['name']} has no label {key}")
    targets = {d["metadata"]["name"] for d in kinds.get("Deployment", [])}
    for hpa in kinds.get("HorizontalPodAutoscaler", []):
        if hpa["spec"]["scaleTargetRef"]["name"] not in targets:
            problems.append(f"HPA {hpa['metadata']['name']} targets a Deployment that is not in deploy/k8s")
    contexts = set()
    for d in kinds.get("Deployment", []):
        n = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        args = c.get("args", [])
        if "--contexts" not in args:
            problems.append(f"Deployment {n} does not choose its context")
            continue
        context = args[args.index("--contexts") + 1]
        contexts.add(context)
        service = c.get("readinessProbe", {}).get("grpc", {}).get("service", "")
        if not service.startswith(f"campus.{context}.v1."):
            problems.append(f"Deployment {n}: the readiness probe asks about '{service}', not the {context} service")
        env = {e["name"]: e for e in c.get("env", [])}
        ref = env.get("QUAD_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") not in secret_names or ref.get("key") != "uri":
            problems.append(f"Deployment {n}: QUAD_DATABASE_URL must come from the CloudNativePG secret {sorted(secret_names)} key uri")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"Deployment {n} may run as root")
        selector = d["spec"]["selector"]["matchLabels"]
        if not any(p["spec"]["selector"]["matchLabels"] == selector for p in kinds.get("PodDisruptionBudget", [])):
            problems.append(f"Deployment {n} has no PodDisruptionBudget")
    if contexts != {"students", "scans", "analytics"}:
        problems.append(f"deploy/k8s deploys the contexts {sorted(contexts)}, not students, scans and analytics")
    compose = documents(os.path.join(ROOT, "deploy/compose.yaml"))[0]
    services = compose.get("services", {})
    if set(services) != {"postgres", "quad"} or "QUAD_DATABASE_URL" not in services["quad"].get("environment", {}):
        problems.append("deploy/compose.yaml must run postgres and quad, quad with QUAD_DATABASE_URL")
    for p in problems:
        print("check-deploy: " + p, file=sys.stderr)
    if problems:
        return 1
    print(f"check-deploy: {len(manifests)} manifests; CloudNativePG resources match the schema; "
          f"HPA external metrics are exported by quad ({', '.join(sorted(m for m in metrics if 'lag' in m))}); compose file well-formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
