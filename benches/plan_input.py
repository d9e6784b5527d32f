#!/usr/bin/env python3
"""Writes a `bascule plan` input: M MemberClusters and N MultiCloudWorkloads (Divided,
Duplicated and Failover, with tiers by provider, region, label and name, spread constraints and
per-cluster bounds), one multi-document YAML on stdout. Deterministic for given N and M.

    python3 benches/plan_input.py 1000 100 > /tmp/plan-1000x100.yaml
    time target/release/bascule plan /tmp/plan-1000x100.yaml > /dev/null

Used for the `bascule plan` figure in docs/benchmarks.md.
"""
import sys

REGIONS = {"aws": ["us-east-1", "us-west-2", "eu-west-1"], "gcp": ["europe-west1", "us-central1"]}


def cluster(i):
    provider = "aws" if i % 2 == 0 else "gcp"
    regions = REGIONS[provider]
    region = regions[(i // 2) % len(regions)]
    return f"""---
apiVersion: bascule.dev/v1alpha1
kind: MemberCluster
metadata:
  name: c{i:03d}
  labels: {{tier: "{'gold' if i % 5 == 0 else 'std'}"}}
spec:
  provider: {provider}
  region: {region}
  connection: {{kubeconfigSecretRef: {{name: member-c{i:03d}}}}}
"""


def workload(j, clusters):
    mode = ["Divided", "Divided", "Failover", "Duplicated"][j % 4]
    name = f"w{j:04d}"
    if mode == "Failover":
        placement = f"""  placement:
    mode: Failover
    standbyReplicas: 1
    tiers:
      - {{name: primary, providers: [aws], regions: [us-east-1]}}
      - {{name: fallback, providers: [gcp]}}
"""
    elif mode == "Duplicated":
        names = ", ".join(f"c{(j + k) % clusters:03d}" for k in range(3))
        placement = f"""  placement:
    mode: Duplicated
    tiers:
      - clusterNames: [{names}]
"""
    else:
        placement = f"""  placement:
    mode: Divided
    tiers:
      - {{name: gold, labelSelector: {{matchLabels: {{tier: gold}}}}, weight: 3}}
      - {{name: aws, providers: [aws], weight: 2}}
      - {{name: gcp, providers: [gcp], weight: 1}}
    spread: {{minProviders: 2, maxClusters: {4 + j % 8}}}
    clusterReplicas: {{maxReplicas: 20}}
"""
    return f"""---
apiVersion: bascule.dev/v1alpha1
kind: MultiCloudWorkload
metadata: {{name: {name}, namespace: team-{j % 20}}}
spec:
  replicas: {3 + j % 30}
{placement}  template:
    manifests:
      - apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers:
                - name: app
                  image: registry.example/{name}:1
                  resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}
      - apiVersion: v1
        kind: Service
        metadata: {{name: {name}}}
        spec: {{selector: {{app: {name}}}, ports: [{{port: 80}}]}}
"""


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    out = [cluster(i) for i in range(m)] + [workload(j, m) for j in range(n)]
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
