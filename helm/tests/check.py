#!/usr/bin/env python3
"""Checks of the Tollgate Helm chart, run by .ci/helm-check.

Uses Helm's own library (the Helm v4 Go SDK, through the `helm_python` bindings of the
`helm-python-sdk` package): `helm lint --strict`, and client-side dry-run installs (what
`helm template` does) with the default values and the scenarios in helm/tests/values/.

1. lint: no warning or error, for every scenario;
2. render: every scenario renders; structural checks on the objects (security context,
   probes, Secrets and Services referenced exist, expected kinds per scenario);
3. values schema: good values pass, bad values fail with the expected message;
4. flags: every --flag and TOLLGATE_* variable the templates give a Tollgate binary is in
   that binary's --help (target/debug/*, built by `cargo build --workspace --bins`);
5. mTLS smoke test: the chart's generated master key, bootstrap token, sync certificates
   and sync token start the real control plane (file store) and a data plane that syncs
   over mTLS with the token and becomes ready.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
import helm_python as helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tollgate"
SCENARIOS = ROOT / "helm" / "tests" / "values"
BIN = Path(os.environ.get("TOLLGATE_BIN_DIR", ROOT / "target" / "debug"))
NAMESPACE = "tollgate-test"
RELEASE = "tg"

# TOLLGATE_* variables read without a flag of their own (documented in --help texts).
ENV_WITHOUT_FLAG = {
    "TOLLGATE_MASTER_KEY",  # serve/reencrypt: the keyring, when --master-key-file is absent
    "TOLLGATE_LOG",  # tracing filter of the control plane
}

passed = 0
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def load_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def render(values: dict | None) -> list[dict]:
    """A client-side dry-run install: the manifests `helm install` would apply."""
    cfg = helm.Config(storage_driver="memory", namespace=NAMESPACE)
    release = cfg.install(str(CHART), RELEASE, values, dry_run="client", namespace=NAMESPACE)
    return [d for d in yaml.safe_load_all(release["manifest"]) if d]


def render_notes(values: dict | None) -> str:
    out = helm.Chart.load(str(CHART)).render(values, name=RELEASE, namespace=NAMESPACE)
    return next(v for k, v in out.items() if k.endswith("NOTES.txt"))


def render_error(values: dict) -> str | None:
    try:
        render(values)
    except helm.HelmError as e:
        return str(e)
    return None


# ---------------------------------------------------------------------------- lint


def lint_all(scenarios: dict[str, dict | None]) -> None:
    for name, values in scenarios.items():
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        # Severity: 1 info, 2 warning, 3 error; --strict fails on warnings.
        bad = [m for m in report["messages"] if m["severity"] >= 2]
        for m in bad:
            print(f"  lint {name}: {m['path']}: {m['error'].strip()}", file=sys.stderr)
        check(not bad and not report["errors"], f"helm lint --strict ({name})")


# ---------------------------------------------------------------------------- render


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict]):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield d, d["spec"]["template"]["spec"]


def check_objects(name: str, values: dict, docs: list[dict]) -> None:
    values = values or {}
    kinds = {d["kind"] for d in docs}
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for d in docs:
        check(d["metadata"].get("namespace") in (None, NAMESPACE) or d["kind"] == "ServiceMonitor",
              f"{name}: {d['kind']}/{d['metadata']['name']} in the release namespace")

    # Pods: non-root, read-only root, no capabilities, seccomp, no token.
    for obj, spec in pod_specs(docs):
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532,
              f"{where}: pod runs as non-root uid 65532")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{where}: seccomp RuntimeDefault")
        check(spec.get("automountServiceAccountToken") is False, f"{where}: no API token")
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            check(sc.get("allowPrivilegeEscalation") is False
                  and sc.get("readOnlyRootFilesystem") is True
                  and sc.get("capabilities", {}).get("drop") == ["ALL"]
                  and not sc.get("capabilities", {}).get("add"),
                  f"{where}/{c['name']}: no privilege escalation, read-only root, no capabilities")
            check("resources" in c and c["resources"].get("requests"),
                  f"{where}/{c['name']}: resource requests")
            check(all(p in c for p in ("livenessProbe", "readinessProbe")),
                  f"{where}/{c['name']}: liveness and readiness probes")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            vols = {v["name"] for v in spec.get("volumes", [])} | {
                t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
            check(mounts <= vols, f"{where}/{c['name']}: every volumeMount has a volume")
        # Secrets referenced: rendered here, or named in values as provided by the operator.
        provided = {
            values.get("secrets", {}).get("existingSecret"),
            values.get("sync", {}).get("tls", {}).get("existingSecret", {}).get("controlPlane"),
            values.get("sync", {}).get("tls", {}).get("existingSecret", {}).get("dataPlane"),
            values.get("etcd", {}).get("external", {}).get("tls", {}).get("existingSecret"),
            values.get("dataPlane", {}).get("tls", {}).get("existingSecret"),
            values.get("controlPlane", {}).get("adminTls", {}).get("existingSecret"),
            values.get("sync", {}).get("token", {}).get("existingSecret"),
            values.get("egressProxy", {}).get("existingSecret"),
        } - {None, ""}
        certs = {d["spec"]["secretName"] for d in docs if d["kind"] == "Certificate"}
        refs = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for c in spec["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add(ref["name"])
        for ref in refs:
            check(("Secret", ref) in names or ref in certs or ref in provided,
                  f"{where}: Secret {ref} is rendered, issued by a Certificate or provided")

    # Services select pods of this release and target named ports that exist.
    pods = [(obj["spec"]["template"]["metadata"]["labels"], spec) for obj, spec in pod_specs(docs)]
    for svc in by_kind(docs, "Service"):
        sel = svc["spec"]["selector"]
        matching = [spec for labels, spec in pods if sel.items() <= labels.items()]
        check(len(matching) == 1, f"{name}: Service/{svc['metadata']['name']} selects one workload")
        ports = {p["name"] for spec in matching for c in spec["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports,
                  f"{name}: Service/{svc['metadata']['name']} port {p['targetPort']} exists")

    if values.get("controlPlane", {}).get("enabled", True) is False:
        check_data_plane_only(name, values, docs)
        return
    cp = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-control-plane"))
    dp = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-data-plane"))
    cpc = cp["spec"]["template"]["spec"]["containers"][0]
    dpc = dp["spec"]["template"]["spec"]["containers"][0]
    admin_tls = values.get("controlPlane", {}).get("adminTls", {}).get("existingSecret")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if admin_tls:
            check(cpc[probe].get("tcpSocket", {}).get("port") == 7070 and "grpc" not in cpc[probe],
                  f"{name}: control plane {probe} is a TCP check of 7070 (admin TLS)")
        else:
            check(cpc[probe].get("grpc", {}).get("port") == 7070, f"{name}: control plane {probe} is gRPC on 7070")
    cp_args = cpc["args"]
    check(("--admin-tls-cert=/etc/tollgate/admin-tls/tls.crt" in cp_args
           and "--admin-tls-key=/etc/tollgate/admin-tls/tls.key" in cp_args) == bool(admin_tls),
          f"{name}: admin TLS flags iff controlPlane.adminTls.existingSecret")
    check(any(m["name"] == "admin-tls" and m["mountPath"] == "/etc/tollgate/admin-tls"
              for m in cpc.get("volumeMounts", [])) == bool(admin_tls),
          f"{name}: admin TLS Secret mounted iff set")
    check(any(e.get("name") == "TOLLGATE_INSTANCE_ID"
              and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
              for e in dpc.get("env", [])),
          f"{name}: data planes report as their pod's name")
    cpv = values.get("controlPlane", {})
    hook = cpv.get("alertWebhookUrl", "")
    check((f"--alert-webhook-url={hook}" in cp_args) == bool(hook)
          and not (any(a.startswith("--alert-webhook-url") for a in cp_args) and not hook),
          f"{name}: --alert-webhook-url iff controlPlane.alertWebhookUrl")
    check(f"--violation-retention-days={cpv.get('violationRetentionDays', 90)}" in cp_args,
          f"{name}: violation retention from controlPlane.violationRetentionDays")
    check(dpc["livenessProbe"]["httpGet"]["path"] == "/healthz"
          and dpc["readinessProbe"]["httpGet"]["path"] == "/readyz"
          and dpc["readinessProbe"]["httpGet"]["port"] == "admin",
          f"{name}: data plane probes /healthz and /readyz on the admin port")
    check(cp["spec"]["replicas"] >= 2 or values.get("controlPlane", {}).get("replicaCount", 2) < 2,
          f"{name}: control plane has 2+ replicas")
    check(any(t["topologyKey"] == "kubernetes.io/hostname"
              for t in cp["spec"]["template"]["spec"]["topologySpreadConstraints"]),
          f"{name}: control plane spread over nodes")
    ports = {p["containerPort"] for p in cpc["ports"]} | {p["containerPort"] for p in dpc["ports"]}
    check(ports == {7070, 7071, 8080, 8081}, f"{name}: ports 7070, 7071, 8080, 8081")

    dpv = values.get("dataPlane", {})
    delay = dpv.get("drainDelaySeconds", 5)
    dp_args = dpc["args"]
    check((f"--drain-delay-ms={delay * 1000}" in dp_args) == (delay > 0)
          and "lifecycle" not in dpc,
          f"{name}: data plane drains with --drain-delay-ms from dataPlane.drainDelaySeconds")
    # The data plane finishes open requests within 30 s after the delay: the kubelet must
    # not kill it sooner.
    grace = dp["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    check(grace >= delay + 30, f"{name}: terminationGracePeriodSeconds {grace} covers delay {delay} + 30 s drain")
    ca = values.get("upstreamCA", {})
    for what, obj, c in (("control plane", cp, cpc), ("data plane", dp, dpc)):
        check_upstream_ca(f"{name}: {what}", ca, obj["spec"]["template"]["spec"], c)
        check_egress_proxy(f"{name}: {what}", values.get("egressProxy", {}), c)
    hpa_on = dpv.get("autoscaling", {}).get("enabled", True)
    check(("HorizontalPodAutoscaler" in kinds) == hpa_on, f"{name}: HPA iff autoscaling")
    check(("replicas" in dp["spec"]) != hpa_on, f"{name}: data plane replicas left to the HPA")
    check(sum(1 for d in by_kind(docs, "PodDisruptionBudget") if d["metadata"]["name"].endswith("-data-plane")) == 1,
          f"{name}: data plane PodDisruptionBudget")
    check(("ServiceMonitor" in kinds) == bool(values.get("serviceMonitor", {}).get("enabled")),
          f"{name}: ServiceMonitor iff enabled")
    np_on = values.get("networkPolicy", {}).get("enabled", True)
    check(("NetworkPolicy" in kinds) == np_on, f"{name}: NetworkPolicy iff enabled")
    if np_on:
        cpnp = next(d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"].endswith("-control-plane"))
        sync_rule = next(r for r in cpnp["spec"]["ingress"] if r["ports"][0]["port"] == 7071)
        dp_labels = dp["spec"]["selector"]["matchLabels"]
        check(sync_rule.get("from") and sync_rule["from"][0]["podSelector"]["matchLabels"] == dp_labels,
              f"{name}: only data planes reach the sync port")

    etcd_mode = values.get("etcd", {}).get("mode", "bundled")
    sts = by_kind(docs, "StatefulSet")
    check(bool(sts) == (etcd_mode == "bundled"), f"{name}: etcd StatefulSet iff bundled")
    store = next(a for a in cpc["args"] if a.startswith("--store="))
    if etcd_mode == "bundled":
        etcd = sts[0]
        n = etcd["spec"]["replicas"]
        args = etcd["spec"]["template"]["spec"]["containers"][0]["args"]
        initial = next(a for a in args if a.startswith("--initial-cluster="))
        members = initial.split("=", 1)[1].split(",")
        check(len(members) == n and all(
            m.startswith(f"{etcd['metadata']['name']}-{i}=http://{etcd['metadata']['name']}-{i}.{etcd['spec']['serviceName']}.")
            for i, m in enumerate(members)), f"{name}: --initial-cluster names every member via the headless Service")
        check(store.count(":2379") == n and store.startswith("--store=etcd://"),
              f"{name}: control plane --store lists every etcd member")
        headless = next(d for d in by_kind(docs, "Service") if d["metadata"]["name"] == etcd["spec"]["serviceName"])
        check(headless["spec"].get("clusterIP") == "None", f"{name}: etcd peer Service is headless")
    else:
        eps = values["etcd"]["external"]["endpoints"]
        tls = values["etcd"]["external"].get("tls", {}).get("enabled")
        want = "--store=etcd://" + ",".join(eps)
        check(store == want, f"{name}: --store is the external endpoints ({store})")
        cp_args = cpc["args"]
        tls_flags = {"--etcd-ca-file=/etc/tollgate/etcd-tls/ca.crt",
                     "--etcd-cert-file=/etc/tollgate/etcd-tls/tls.crt",
                     "--etcd-key-file=/etc/tollgate/etcd-tls/tls.key"}
        check(tls_flags <= set(cp_args) if tls else not (tls_flags & set(cp_args)),
              f"{name}: etcd TLS flags iff etcd.external.tls.enabled")

    # The sync token: on both sides or on neither, from one Secret.
    token = values.get("sync", {}).get("token", {})
    for c, spec, who in ((cpc, cp["spec"]["template"]["spec"], "control plane"),
                         (dpc, dp["spec"]["template"]["spec"], "data plane")):
        flag = [a for a in c["args"] if a.startswith("--sync-token-file=")]
        mounted = [m for m in c.get("volumeMounts", []) if m["name"] == "sync-token"]
        vol = [v for v in spec.get("volumes", []) if v["name"] == "sync-token"]
        check(bool(flag) == bool(mounted) == bool(vol) == bool(token.get("enabled")),
              f"{name}: {who} gets the sync token iff sync.token.enabled")
        if flag:
            key = token.get("key", "token")
            check(flag[0] == f"--sync-token-file={mounted[0]['mountPath']}/{key}"
                  and vol[0]["secret"]["items"] == [{"key": key, "path": key}],
                  f"{name}: {who} reads the sync token from the mounted Secret")
            want = token.get("existingSecret") or f"{RELEASE}-tollgate-sync-token"
            check(vol[0]["secret"]["secretName"] == want,
                  f"{name}: {who} mounts the sync token Secret {want}")
    generated = [d for d in by_kind(docs, "Secret") if d["metadata"]["name"].endswith("-sync-token")]
    check(bool(generated) == bool(token.get("enabled") and not token.get("existingSecret")),
          f"{name}: a sync token Secret is generated iff enabled without existingSecret")

    mode = values.get("sync", {}).get("tls", {}).get("mode", "generate")
    check(("Certificate" in kinds) == (mode == "certManager"), f"{name}: Certificates iff cert-manager")
    tls_secrets = [d for d in by_kind(docs, "Secret") if d.get("type") == "kubernetes.io/tls"]
    check(bool(tls_secrets) == (mode == "generate"), f"{name}: generated TLS Secrets iff mode generate")
    if mode == "certManager":
        cert = next(d for d in by_kind(docs, "Certificate") if d["metadata"]["name"].endswith("-control-plane-sync"))
        url = next(a for a in dpc["args"] if a.startswith("--control-plane=")).split("=", 1)[1]
        host = re.match(r"https://([^:/]+)", url).group(1)
        check(host in cert["spec"]["dnsNames"], f"{name}: sync certificate names {host}")


def check_upstream_ca(where: str, ca: dict, spec: dict, c: dict) -> None:
    """--upstream-ca-file, its mount and its ConfigMap volume iff upstreamCA.configMap."""
    cm, key = ca.get("configMap", ""), ca.get("key", "ca.crt")
    flag = f"--upstream-ca-file=/etc/tollgate/upstream-ca/{key}"
    mounted = any(m["name"] == "upstream-ca" and m["mountPath"] == "/etc/tollgate/upstream-ca"
                  for m in c.get("volumeMounts", []))
    volume = any(v["name"] == "upstream-ca" and v.get("configMap", {}).get("name") == cm
                 and v["configMap"].get("items") == [{"key": key, "path": key}]
                 for v in spec.get("volumes", []))
    check((flag in c["args"]) == bool(cm) and mounted == bool(cm) and volume == bool(cm)
          and not (not cm and any(a.startswith("--upstream-ca-file") for a in c["args"])),
          f"{where}: --upstream-ca-file from ConfigMap upstreamCA.configMap iff set")


def check_egress_proxy(where: str, proxy: dict, c: dict) -> None:
    """HTTPS_PROXY and HTTP_PROXY from egressProxy.url or its Secret, NO_PROXY with them."""
    env = {e["name"]: e for e in c.get("env", [])}
    url, secret = proxy.get("url", ""), proxy.get("existingSecret", "")
    for name in ("HTTPS_PROXY", "HTTP_PROXY"):
        e = env.get(name)
        if url:
            ok = e is not None and e.get("value") == url
        elif secret:
            ref = (e or {}).get("valueFrom", {}).get("secretKeyRef", {})
            ok = ref == {"name": secret, "key": proxy.get("secretKey", "url")}
        else:
            ok = e is None
        check(ok, f"{where}: {name} from egressProxy iff set")
    no = proxy.get("noProxy", ".svc,.svc.cluster.local,.cluster.local")
    check(env.get("NO_PROXY", {}).get("value") == (no if no and (url or secret) else None),
          f"{where}: NO_PROXY from egressProxy.noProxy with a proxy")


def check_data_plane_only(name: str, values: dict, docs: list[dict]) -> None:
    """A release of data planes only (controlPlane.enabled false), syncing from another."""
    kinds = {d["kind"] for d in docs}
    check([d["metadata"]["name"] for d in by_kind(docs, "Deployment")] == [f"{RELEASE}-tollgate-data-plane"],
          f"{name}: the data plane is the only Deployment")
    check(not kinds & {"StatefulSet", "Certificate", "Issuer", "Secret"},
          f"{name}: no etcd, certificates or Secrets (they belong to the control plane's release)")
    check(all("-data-plane" in d["metadata"]["name"] or d["metadata"]["name"].endswith("-gateway")
              for d in by_kind(docs, "Service")),
          f"{name}: only the gateway and data-plane Services")
    check([d["metadata"]["name"] for d in by_kind(docs, "NetworkPolicy")] in ([], [f"{RELEASE}-tollgate-data-plane"]),
          f"{name}: only the data plane's NetworkPolicy")
    dp = by_kind(docs, "Deployment")[0]
    spec = dp["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    dpv = values["dataPlane"]
    check(f"--control-plane={dpv['controlPlaneUrl']}" in args, f"{name}: data planes dial dataPlane.controlPlaneUrl")
    check(f"--environment={dpv['environment']}" in args, f"{name}: data planes serve dataPlane.environment")
    check_upstream_ca(f"{name}: data plane", values.get("upstreamCA", {}), spec, spec["containers"][0])
    check_egress_proxy(f"{name}: data plane", values.get("egressProxy", {}), spec["containers"][0])
    vols = {v["name"]: v for v in spec["volumes"]}
    check(vols["sync-tls"]["secret"]["secretName"] == values["sync"]["tls"]["existingSecret"]["dataPlane"],
          f"{name}: the copied sync client certificate is mounted")
    token = values.get("sync", {}).get("token", {})
    if token.get("enabled"):
        check(vols["sync-token"]["secret"]["secretName"] == token["existingSecret"],
              f"{name}: the copied sync token is mounted")
    # What the release refuses to render without a control plane, and why.
    base = {"controlPlane": {"enabled": False}, "dataPlane": {"controlPlaneUrl": dpv["controlPlaneUrl"]},
            "sync": {"tls": {"mode": "existingSecret", "existingSecret": {"dataPlane": "x"}}}}
    for bad, needle in (
        ({"controlPlane": {"enabled": False}}, "set dataPlane.controlPlaneUrl"),
        ({**base, "sync": {"tls": {"mode": "generate"}}}, "set sync.tls.mode to existingSecret"),
        ({**base, "sync": {**base["sync"], "token": {"enabled": True}}}, "needs sync.token.existingSecret"),
    ):
        err = render_error(bad) or ""
        check(needle in err, f"{name}: refused without a control plane: {needle} ({err[:200]})")


# ---------------------------------------------------------------------------- schema

GOOD = [
    {"controlPlane": {"replicaCount": 3}, "dataPlane": {"autoscaling": {"enabled": False}, "replicaCount": 0}},
    {"etcd": {"bundled": {"replicas": 5}}},
    {"dataPlane": {"maxBodyBytes": 1048576, "controlPlaneUrl": "https://cp.example.com:7071"}},
    {"sync": {"tls": {"mode": "certManager", "certManager": {"duration": "720h", "renewBefore": "24h"}}}},
]

# (values, text the error must contain)
BAD = [
    ({"etcd": {"mode": "embedded"}}, "'/etcd/mode': value must be one of 'bundled', 'external'"),
    ({"etcd": {"mode": "external"}}, "'/etcd/external/endpoints': minItems"),
    ({"etcd": {"mode": "external", "external": {"endpoints": ["http://etcd:2379"]}}},
     "'/etcd/external/endpoints/0'"),
    ({"etcd": {"bundled": {"replicas": 2}}}, "'/etcd/bundled/replicas': value must be one of 1, 3, 5"),
    ({"etcd": {"external": {"tls": {"enabled": True}}, "mode": "external", }},
     "'/etcd/external"),
    ({"controlPlane": {"replicaCount": "two"}}, "'/controlPlane/replicaCount': got string, want integer"),
    ({"controlPlane": {"replicas": 2}}, "additional properties 'replicas' not allowed"),
    ({"controlPlane": {"logFormat": "xml"}}, "'/controlPlane/logFormat': value must be one of 'text', 'json'"),
    ({"controlPlane": {"storePrefix": "tollgate"}}, "'/controlPlane/storePrefix'"),
    ({"controlPlane": {"alertWebhookUrl": "hooks.example.com"}}, "'/controlPlane/alertWebhookUrl'"),
    ({"controlPlane": {"violationRetentionDays": 0}}, "'/controlPlane/violationRetentionDays': minimum"),
    ({"sync": {"tls": {"mode": "none"}}}, "'/sync/tls/mode': value must be one of 'generate', 'certManager', 'existingSecret'"),
    ({"sync": {"tls": {"mode": "existingSecret"}}}, "'/sync/tls/existingSecret/controlPlane': minLength"),
    ({"sync": {"tls": {"certManager": {"duration": "90 days"}}}}, "'/sync/tls/certManager/duration'"),
    ({"sync": {"token": {"enabled": "yes"}}}, "'/sync/token/enabled': got string, want boolean"),
    ({"sync": {"token": {"key": "a/b"}}}, "'/sync/token/key'"),
    ({"dataPlane": {"controlPlaneUrl": "http://cp:7071"}}, "'/dataPlane/controlPlaneUrl'"),
    ({"dataPlane": {"autoscaling": {"minReplicas": 0}}}, "'/dataPlane/autoscaling/minReplicas': minimum"),
    ({"dataPlane": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}},
     "dataPlane.autoscaling.maxReplicas must be at least dataPlane.autoscaling.minReplicas"),
    ({"dataPlane": {"service": {"port": 70000}}}, "'/dataPlane/service/port': maximum"),
    ({"upstreamCA": {"configMap": "In_House_CA"}}, "'/upstreamCA/configMap'"),
    ({"egressProxy": {"url": "https://proxy.corp:3128"}}, "'/egressProxy/url'"),
    ({"egressProxy": {"url": "http://bob:secret@proxy.corp:3128"}}, "'/egressProxy/url'"),
    ({"egressProxy": {"url": "http://proxy.corp:3128", "existingSecret": "proxy"}},
     "egressProxy: set url or existingSecret, not both"),
    ({"upstreamCA": {"key": "certs/ca.pem"}}, "'/upstreamCA/key'"),
    ({"image": {"digest": "latest"}}, "'/image/digest'"),
    ({"networkPolicy": {"enabled": "yes"}}, "'/networkPolicy/enabled': got string, want boolean"),
    ({"serviceMonitor": {"enable": True}}, "additional properties 'enable' not allowed"),
]


def schema_tests() -> None:
    for values in GOOD:
        err = render_error(values)
        check(err is None, f"schema accepts {json.dumps(values)}: {err}")
    for values, expected in BAD:
        err = render_error(values)
        ok = err is not None and expected in err
        if not ok:
            print(f"  got: {err!r}", file=sys.stderr)
        check(ok, f"schema rejects {json.dumps(values)} with {expected!r}")


# ---------------------------------------------------------------------------- flags

_help_cache: dict[tuple[str, ...], str] = {}


def help_text(cmd: tuple[str, ...]) -> str:
    if cmd not in _help_cache:
        out = subprocess.run([str(BIN / cmd[0]), *cmd[1:], "--help"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} --help failed: {out.stderr}")
        _help_cache[cmd] = out.stdout
    return _help_cache[cmd]


def flags_in(help: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", help))


def envs_in(help: str) -> set[str]:
    return set(re.findall(r"\[env: (TOLLGATE_[A-Z0-9_]+)", help))


def check_flags(name: str, docs: list[dict]) -> None:
    seen = 0
    for obj, spec in pod_specs(docs):
        for c in spec["containers"]:
            binary = os.path.basename((c.get("command") or [""])[0])
            if not binary.startswith("tollgate"):
                continue
            args = [str(a) for a in c.get("args", [])]
            cmd = (binary,)
            if binary == "tollgate-control-plane":
                cmd = (binary, args[0])
                args = args[1:]
            help = help_text(cmd)
            given = [a.split("=", 1)[0] for a in args if a.startswith("--")]
            for flag in given:
                seen += 1
                check(flag in flags_in(help), f"{name}: `{' '.join(cmd)}` has {flag} (in --help)")
            dups = {f for f in given if given.count(f) > 1}
            check(not dups, f"{name}: `{' '.join(cmd)}` gets no flag twice ({sorted(dups)})")
            for e in c.get("env", []):
                if e["name"].startswith("TOLLGATE_"):
                    seen += 1
                    check(e["name"] in envs_in(help) or e["name"] in ENV_WITHOUT_FLAG,
                          f"{name}: `{' '.join(cmd)}` reads {e['name']} (in --help)")
    check(seen > 5, f"{name}: flags were found to check ({seen})")


def check_documented_commands(label: str, text: str) -> None:
    """Every tollgatectl / tollgate-control-plane command line in `text` uses real flags."""
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        for m in re.finditer(r"(?<![\w/.-])(tollgatectl|tollgate-control-plane|tollgate-data-plane)(?![\w.-])([^|&;#`)]*)", line):
            binary, rest = m.group(1), m.group(2).split()
            cmd = [binary]
            flags = []
            # Subcommands: leading bare words that the help lists as commands; options given
            # before them (tollgatectl -o json key create) belong to the outer command.
            while rest:
                here = help_text(tuple(cmd))
                word = rest[0]
                if word.startswith("-"):
                    rest.pop(0)
                    flag = word.split("=", 1)[0]
                    if flag.startswith("--"):
                        check(flag in flags_in(here), f"{label}: `{' '.join(cmd)} {flag}` exists")
                    takes_value = re.search(rf"(^|[\s,]){re.escape(flag)}[ ,=][^\n]*?<", here, re.M)
                    if "=" not in word and takes_value and rest:
                        rest.pop(0)
                elif re.fullmatch(r"[a-z][a-z-]*", word) and re.search(
                        rf"^\s+{re.escape(word)}\s", here, re.M):
                    cmd.append(rest.pop(0))
                else:
                    break
            flags = [a.split("=", 1)[0] for a in rest if re.fullmatch(r"--[a-z0-9-]+(=.*)?", a)]
            known = flags_in(help_text(tuple(cmd)))
            for f in flags:
                check(f in known, f"{label}: `{' '.join(cmd)} {f}` exists")


# ---------------------------------------------------------------------------- smoke


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke_test() -> None:
    """The chart's generated secrets and certificates work with the real binaries."""
    docs = render({"sync": {"tls": {"extraDnsNames": ["localhost"]}, "token": {"enabled": True}}})
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()}
               for d in by_kind(docs, "Secret")}
    prefix = f"{RELEASE}-tollgate"
    tmp = Path(tempfile.mkdtemp(prefix="helm-smoke-"))
    procs: list[subprocess.Popen] = []
    try:
        for secret, files in secrets.items():
            d = tmp / secret
            d.mkdir()
            for k, v in files.items():
                (d / k).write_bytes(v)
                os.chmod(d / k, 0o600)
        token = secrets[f"{prefix}-secrets"]["bootstrap-token"].decode()
        check(len(token) >= 16 and " " not in token, "generated bootstrap token is valid")
        sync_token = tmp / f"{prefix}-sync-token" / "token"
        admin, sync, gw, gw_admin = (free_port() for _ in range(4))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        cp_tls = tmp / f"{prefix}-control-plane-sync-tls"
        dp_tls = tmp / f"{prefix}-data-plane-sync-tls"
        cp_log = open(tmp / "cp.log", "w")
        procs.append(subprocess.Popen(
            [str(BIN / "tollgate-control-plane"), "serve", f"--store=file://{tmp}/store.redb",
             f"--master-key-file={tmp}/{prefix}-secrets/master.key",
             f"--admin-listen=127.0.0.1:{admin}", f"--sync-listen=127.0.0.1:{sync}",
             f"--sync-tls-cert={cp_tls}/tls.crt", f"--sync-tls-key={cp_tls}/tls.key",
             f"--sync-client-ca={cp_tls}/ca.crt", f"--sync-token-file={sync_token}"],
            env={**env, "TOLLGATE_BOOTSTRAP_TOKEN": token}, stdout=cp_log, stderr=subprocess.STDOUT))
        dp_log = open(tmp / "dp.log", "w")
        procs.append(subprocess.Popen(
            [str(BIN / "tollgate-data-plane"), f"--control-plane=https://localhost:{sync}",
             f"--control-plane-ca={dp_tls}/ca.crt", f"--client-cert={dp_tls}/tls.crt",
             f"--client-key={dp_tls}/tls.key", f"--sync-token-file={sync_token}",
             f"--listen=127.0.0.1:{gw}",
             f"--admin-listen=127.0.0.1:{gw_admin}"],
            env=env, stdout=dp_log, stderr=subprocess.STDOUT))
        ready = False
        deadline = time.time() + 30
        while time.time() < deadline and not ready:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{gw_admin}/readyz", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.3)
        check(ready, "data plane syncs over mTLS with the chart's certificates and sync token "
                     "and becomes ready")
        ctl = subprocess.run([str(BIN / "tollgatectl"), "-o", "json", "workspace", "list"],
                             env={**env, "TOLLGATE_ADDR": f"http://127.0.0.1:{admin}",
                                  "TOLLGATE_TOKEN": token},
                             capture_output=True, text=True, timeout=30)
        check(ctl.returncode == 0 and "default" in ctl.stdout,
              f"the generated bootstrap token administers the control plane: {ctl.stderr.strip()}")
        if not ready or ctl.returncode != 0:
            for log in ("cp.log", "dp.log"):
                print(f"--- {log}\n{(tmp / log).read_text()[-3000:]}", file=sys.stderr)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- main


def main() -> int:
    scenarios: dict[str, dict | None] = {"default": None}
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenarios[path.stem] = load_values(path)

    lint_all(scenarios)
    for name, values in scenarios.items():
        try:
            docs = render(values)
        except helm.HelmError as e:
            check(False, f"render {name}: {e}")
            continue
        check(True, f"render {name}")
        check_objects(name, values or {}, docs)
        check_flags(name, docs)
        check_documented_commands(f"NOTES.txt ({name})", render_notes(values))
    schema_tests()
    docs_md = ROOT / "docs" / "kubernetes.md"
    if docs_md.exists():
        check_documented_commands("docs/kubernetes.md", docs_md.read_text())
    smoke_test()

    print(f"helm-check: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
