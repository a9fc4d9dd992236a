"""The Kubernetes manifests in k8s/, checked offline (no cluster).

Each kustomization (k8s/base, k8s/overlays/dev, k8s/overlays/production, and
the variants in k8s/variants applied to them) is rendered with
`kubectl kustomize`. Every rendered object is validated against the
Kubernetes API schemas by k8s/validate/validate.cjs (npm kubernetes-models,
installed once with `npm ci` into ~/.cache/signal-node/k8s-validate, keyed by
the lock file; SIGNAL_K8S_VALIDATE_CACHE moves it), unknown fields included.
Then the tests check what the node needs: probes, ports, the shutdown
arithmetic, security, resources, autoscaling, disruption budget, services,
network policy, secrets.

Needs kubectl (with kustomize v5) and node + npm; skips without them.
"""

import base64
import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from urllib.parse import urlsplit

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "k8s")
VALIDATE_DIR = os.path.join(K8S, "validate")
VALIDATE_JS = os.path.join(VALIDATE_DIR, "validate.cjs")
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
CACHE_BASE = os.environ.get("SIGNAL_K8S_VALIDATE_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "signal-node", "k8s-validate")

APP = "signal-node"          # the Deployment, its container, the client Service
ADMIN_SERVICE = "signal-node-admin"
CONFIG_PREFIX = "signal-node-config"
SECRET = "signal-node"
NODE_UID = 10001             # docker/Dockerfile's USER
WS_PORT, ADMIN_PORT = 8080, 9090
REDIS_PORT = 6379
SENTINEL_PORT = 26379        # variants/redis-sentinel
# The node: ~4 MiB idle + ~10 MiB per 1,000 idle clients; 14 plans for send queues.
MIB = 1024 * 1024
IDLE_BYTES, BYTES_PER_CLIENT = 4 * MIB, 14 * MIB / 1000
# Every API the manifests may use: GA versions only.
GA_APIS = {"v1", "apps/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1"}
PLACEHOLDER = "CHANGE-ME"

# name -> (kustomization directory relative to k8s/, components relative to k8s/)
TARGETS = {
    "base": ("base", []),
    "dev": ("overlays/dev", []),
    "production": ("overlays/production", []),
    "base+hpa-connections": ("base", ["variants/hpa-connections"]),
    "production+hpa-connections": ("overlays/production", ["variants/hpa-connections"]),
    "production+jwt-public-key": ("overlays/production", ["variants/jwt-public-key"]),
    "dev+jwt-public-key": ("overlays/dev", ["variants/jwt-public-key"]),
    "production+redis-sentinel": ("overlays/production", ["variants/redis-sentinel"]),
}
ALL = list(TARGETS)


# ---------------------------------------------------------------------------
# Tools: kubectl, the validator


@pytest.fixture(scope="session")
def kubectl():
    exe = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not exe:
        pytest.skip("kubectl not installed: the k8s/ manifests are rendered with `kubectl kustomize`")
    r = subprocess.run([exe, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"kubectl not working: {r.stderr.strip()[:300]}")
    kv = json.loads(r.stdout).get("kustomizeVersion", "")
    m = re.match(r"v?(\d+)", kv)
    if not m or int(m.group(1)) < 5:
        pytest.skip(f"kubectl's kustomize is {kv or 'unknown'}; k8s/ needs kustomize v5 (kubectl 1.27+)")
    return exe


@pytest.fixture(scope="session")
def validator():
    """A Validator with its npm packages installed in the cache (once per lock file)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed: the manifests are validated with npm kubernetes-models")
    with open(os.path.join(VALIDATE_DIR, "package.json"), "rb") as f:
        pkg = f.read()
    with open(os.path.join(VALIDATE_DIR, "package-lock.json"), "rb") as f:
        lock = f.read()
    version = json.loads(pkg)["dependencies"]["kubernetes-models"]
    key = hashlib.sha256(pkg + b"\0" + lock).hexdigest()[:12]
    deps = os.path.join(CACHE_BASE, f"kubernetes-models-{version}-{key}")
    if not os.path.exists(os.path.join(deps, ".complete")):
        os.makedirs(CACHE_BASE, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f"kubernetes-models-{version}-{key}.", dir=CACHE_BASE)
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(VALIDATE_DIR, name), tmp)
            env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                       npm_config_audit="false")
            r = subprocess.run([npm, "ci", "--prefix", tmp, "--ignore-scripts", "--no-audit", "--no-fund",
                                "--loglevel=error"], capture_output=True, text=True, timeout=300, env=env)
            if r.returncode != 0:
                pytest.fail(f"npm ci for the k8s validator failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
            open(os.path.join(tmp, ".complete"), "w").close()
            try:
                os.rename(tmp, deps)
            except OSError:  # another run finished first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Validator(node, deps)


class Validator:
    def __init__(self, node, deps):
        self.node, self.deps = node, deps

    def run(self, text, parse_only=False, files=()):
        cmd = [self.node, VALIDATE_JS, "--deps", self.deps] + (["--parse-only"] if parse_only else [])
        cmd += list(files) or ["-"]
        r = subprocess.run(cmd, input=None if files else text, capture_output=True, text=True, timeout=60)
        assert r.returncode in (0, 1), f"validate.cjs failed ({r.returncode}): {r.stderr}{r.stdout[:2000]}"
        return json.loads(r.stdout)["documents"]

    def check(self, objects):
        """Errors for each object, in order (objects are dicts; JSON is YAML)."""
        docs = self.run("\n---\n".join(json.dumps(o) for o in objects) + "\n")
        assert len(docs) == len(objects)
        return [d["errors"] for d in docs]

    def parse(self, *paths):
        """The YAML documents of each file, as {path: [object, ...]} (one path: just its list)."""
        out = {p: [] for p in paths}
        for d in self.run(None, parse_only=True, files=paths):
            out[d["source"]].append(d["object"])
        return out[paths[0]] if len(paths) == 1 else out


# ---------------------------------------------------------------------------
# Rendering


_rendered = {}


@pytest.fixture
def r(request, kubectl, validator):
    """The rendered target named by the test's parameter `target`."""
    return rendered(request.getfixturevalue("target"), kubectl, validator)


def rendered(target, kubectl, validator):
    if target not in _rendered:
        path, components = TARGETS[target]
        if components:
            tmp = tempfile.mkdtemp(prefix="signal-k8s-")
            try:
                rel = os.path.relpath(K8S, tmp)  # kustomize refuses absolute paths
                with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
                    json.dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                               "resources": [f"{rel}/{path}"],
                               "components": [f"{rel}/{c}" for c in components]}, f)
                text = kustomize(kubectl, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            text = kustomize(kubectl, os.path.join(K8S, path))
        _rendered[target] = Rendered(target, validator.run(text))
    return _rendered[target]


def kustomize(kubectl, path):
    p = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"kubectl kustomize {path} failed:\n{p.stderr}"
    return p.stdout


class Rendered:
    def __init__(self, target, docs):
        self.target = target
        self.docs = docs
        self.objs = [d["object"] for d in docs]

    def all(self, kind):
        return [o for o in self.objs if o.get("kind") == kind]

    def one(self, kind, name=None):
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.target}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    @property
    def deployment(self):
        return self.one("Deployment", APP)

    @property
    def pod(self):
        return self.deployment["spec"]["template"]

    @property
    def container(self):
        cs = [c for c in self.pod["spec"]["containers"] if c["name"] == APP]
        assert len(cs) == 1, f"{self.target}: no container {APP}"
        return cs[0]

    @property
    def config(self):
        """The ConfigMap the container reads its settings from (envFrom)."""
        names = [e["configMapRef"]["name"] for e in self.container.get("envFrom", []) if "configMapRef" in e]
        assert len(names) == 1, f"{self.target}: the container should take its settings from one ConfigMap"
        cm = self.one("ConfigMap", names[0])
        assert re.fullmatch(re.escape(CONFIG_PREFIX) + r"-[a-z0-9]{10}", names[0]), \
            f"{self.target}: envFrom names {names[0]}, not the generated {CONFIG_PREFIX}"
        return cm["data"]

    def setting(self, name):
        assert name in self.config, f"{self.target}: {name} missing from the ConfigMap"
        return self.config[name]

    @property
    def hpa(self):
        return self.one("HorizontalPodAutoscaler", APP)

    def port_number(self, port, container=None):
        """A container port by name or number -> its number (fails when the container has no such port)."""
        c = container or self.container
        for p in c.get("ports", []):
            if port in (p.get("name"), p["containerPort"]):
                return p["containerPort"]
        pytest.fail(f"{self.target}: container {c['name']} has no port {port!r}")

    def workloads(self):
        return [o for o in self.objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")]


def listen_port(value):
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]*\]|[^:\[\]]*):(\d+)", value)
    assert m, f"bad listen address {value!r}"
    return m.group(1), int(m.group(2))


def selects(selector, labels):
    """A matchLabels selector (non-empty) against pod labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def quantity(q):
    """Kubernetes quantity -> float (cores, or bytes)."""
    s = str(q)
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", s)
    assert m, f"unexpected quantity {q!r}"
    mult = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * mult


def secret_values(secret):
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


def effective(pod, container, field):
    """A securityContext field from the container, else from the pod."""
    c = container.get("securityContext") or {}
    return c[field] if field in c else (pod["spec"].get("securityContext") or {}).get(field)


def prestop_seconds(container):
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return int(pre["sleep"]["seconds"])
    cmd = (pre.get("exec") or {}).get("command") or []
    assert len(cmd) == 2 and os.path.basename(cmd[0]) == "sleep" and cmd[1].isdigit(), \
        f"preStop should be a plain `sleep N`, got {pre!r}"
    return int(cmd[1])


# ---------------------------------------------------------------------------
# Schema validation, and the validator itself


@pytest.mark.parametrize("target", ALL)
def test_renders_and_validates(target, r):
    bad = [f"{d['kind']}/{d.get('name')}: {e}" for d in r.docs for e in d["errors"]]
    assert not bad, f"{target}: invalid objects:\n" + "\n".join(bad)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in r.objs}
    for need in [("Deployment", APP), ("Service", APP), ("Service", ADMIN_SERVICE),
                 ("HorizontalPodAutoscaler", APP), ("PodDisruptionBudget", APP), ("NetworkPolicy", APP)]:
        assert need in kinds, f"{target}: {need} not rendered"
    assert {o["apiVersion"] for o in r.objs} <= GA_APIS, f"{target}: an API that is not GA"
    # Names must be unique per kind (one namespace per overlay).
    names = [(o["kind"], o["metadata"]["name"]) for o in r.objs]
    assert len(names) == len(set(names))


def test_validator_rejects_broken_objects(kubectl, validator):
    """The validator is not vacuous: each defect below must be reported, the intact objects must pass."""
    base = rendered("base", kubectl, validator)
    good_dep, good_hpa = base.deployment, base.hpa
    cases = []  # (object, expected error fragment or None)

    def case(obj, expect):
        cases.append((obj, expect))

    case(good_dep, None)
    case(good_hpa, None)
    d = copy.deepcopy(good_dep)
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    case(d, "containerPort must be integer")
    d = copy.deepcopy(good_dep)
    del d["spec"]["selector"]
    case(d, "required property selector")
    d = copy.deepcopy(good_dep)  # a typo
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["readynessProbe"] = c.pop("readinessProbe")
    case(d, "containers/0/readynessProbe is not a known field")
    d = copy.deepcopy(good_dep)  # a field at the wrong level
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["terminationGracePeriodSeconds"] = 45
    case(d, "containers/0/terminationGracePeriodSeconds is not a known field")
    d = copy.deepcopy(good_dep)
    d["kind"] = "Deploymnet"
    case(d, "unknown apiVersion/kind")
    d = copy.deepcopy(good_dep)
    d["metadata"]["labels"]["app.kubernetes.io/version"] = "1.0.0+build 7"
    case(d, "invalid value")
    h = copy.deepcopy(good_hpa)
    del h["spec"]["metrics"][0]["resource"]["target"]
    case(h, "required property target")
    h = copy.deepcopy(good_hpa)
    h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = "600"
    case(h, "stabilizationWindowSeconds must be integer")
    case({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}},
         'must match format "byte"')
    case({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name"}}, "is not a DNS subdomain")

    results = validator.check([o for o, _ in cases])
    for (obj, expect), errors in zip(cases, results):
        what = f"{obj['kind']} {obj['metadata']['name']}"
        if expect is None:
            assert errors == [], f"intact {what} reported: {errors}"
        else:
            assert any(expect in e for e in errors), f"broken {what}: expected {expect!r}, got {errors}"


# ---------------------------------------------------------------------------
# Settings, ports, probes


@pytest.mark.parametrize("target", ALL)
def test_settings_wiring(target, r):
    env = {e["name"]: e for e in r.container.get("env", [])}
    cfg = r.config
    # The node id defaults to the host name = the pod name, unique per pod.
    assert "SIGNAL_NODE_ID" not in env and "SIGNAL_NODE_ID" not in cfg
    # Secrets never in the ConfigMap.
    for name in ("SIGNAL_REDIS_URL", "SIGNAL_JWT_SECRET", "SIGNAL_MEMBERSHIP_REDIS_URL"):
        assert name not in cfg, f"{target}: {name} belongs in the Secret"
    # The listen addresses come from the ConfigMap alone.
    for name in ("SIGNAL_LISTEN", "SIGNAL_ADMIN_LISTEN", "SIGNAL_DRAIN_S", "SIGNAL_DRAIN_CLOSE_S"):
        assert name not in env, f"{target}: env overrides the ConfigMap's {name}"
    # Redis URL from the Secret; the Secret is rendered only by dev, and then it is the one referenced.
    ref = env["SIGNAL_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "redis-url" and not ref.get("optional")
    secrets = r.all("Secret")
    if target.startswith("dev"):
        s = r.one("Secret", ref["name"])
        assert re.fullmatch(re.escape(SECRET) + r"-[a-z0-9]{10}", ref["name"])
        for e in env.values():
            k = (e.get("valueFrom") or {}).get("secretKeyRef")
            if k:
                assert k["name"] == s["metadata"]["name"] and k["key"] in secret_values(s), f"{target}: {k}"
    else:
        assert ref["name"] == SECRET
        assert secrets == [], f"{target}: must not ship a Secret (it is created out of band)"
    # Every setting name is one the node reads.
    for name in list(cfg) + list(env):
        assert re.fullmatch(r"SIGNAL_[A-Z0-9_]+", name), f"{target}: {name}"


def test_settings_known_to_node(kubectl, validator):
    """Every SIGNAL_* the manifests set is a setting of the node (a misspelt one would be ignored)."""
    exe = os.environ.get("SIGNAL_NODE_BIN") or os.path.join(ROOT, "build", "bin", "signal-node")
    if not os.access(exe, os.X_OK):
        pytest.skip(f"no node binary at {exe}: the setting names are not checked against --help")
    p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30, env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 0, p.stderr
    known = set(re.findall(r"\bSIGNAL_[A-Z0-9_]+\b", p.stdout))
    assert {"SIGNAL_LISTEN", "SIGNAL_REDIS_URL"} <= known, "unexpected --help output"
    for t in ALL:
        r = rendered(t, kubectl, validator)
        names = set(r.config) | {e["name"] for e in r.container.get("env", [])}
        assert names - known == set(), f"{t}: settings the node does not know: {sorted(names - known)}"


@pytest.mark.parametrize("target", ALL)
def test_ports_match_listen_settings(target, r):
    ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in r.container["ports"]}
    assert ports == {"ws": (WS_PORT, "TCP"), "admin": (ADMIN_PORT, "TCP")}
    host, port = listen_port(r.setting("SIGNAL_LISTEN"))
    assert port == ports["ws"][0] and host in ("0.0.0.0", "[::]", ""), f"{target}: SIGNAL_LISTEN"
    host, port = listen_port(r.setting("SIGNAL_ADMIN_LISTEN"))
    assert port == ports["admin"][0] and host in ("0.0.0.0", "[::]", ""), f"{target}: SIGNAL_ADMIN_LISTEN"
    ann = r.pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") == "true":
        assert int(ann["prometheus.io/port"]) == ADMIN_PORT and ann.get("prometheus.io/path") == "/metrics"


def dockerfile_node_stage():
    """The instructions of the Dockerfile's stage that runs signal-node (else its last stage)."""
    text = open(DOCKERFILE).read()
    text = re.sub(r"\\\r?\n", " ", text)  # line continuations
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    starts = [i for i, ln in enumerate(lines) if re.match(r"(?i)FROM\s", ln)] or [0]
    stages = [lines[a:b] for a, b in zip(starts, starts[1:] + [len(lines)])]
    runs_node = [st for st in stages
                 if any(re.match(r"(?i)(ENTRYPOINT|CMD)\s.*signal-node\b", ln) for ln in st)]
    return (runs_node or stages)[-1]


def test_dockerfile_matches(kubectl, validator):
    if not os.path.exists(DOCKERFILE):
        pytest.skip("docker/Dockerfile does not exist yet: its EXPOSE and USER are not checked")
    r = rendered("base", kubectl, validator)
    stage = dockerfile_node_stage()
    exposed, env = set(), {}
    for ln in stage:
        m = re.match(r"(?i)EXPOSE\s+(.*)", ln)
        if m:
            for tok in m.group(1).split():
                pm = re.fullmatch(r"(\d+)(/tcp)?", tok, re.I)
                assert pm, f"docker/Dockerfile: EXPOSE {tok} (not a TCP port number)"
                exposed.add(int(pm.group(1)))
        m = re.match(r"(?i)ENV\s+(.*)", ln)
        if m and "=" in m.group(1).split()[0]:
            env.update(kv.split("=", 1) for kv in shlex.split(m.group(1)))
    container_ports = {p["containerPort"] for p in r.container["ports"]}
    assert exposed == container_ports, f"Dockerfile EXPOSE {sorted(exposed)} != container ports {sorted(container_ports)}"
    for name in ("SIGNAL_LISTEN", "SIGNAL_ADMIN_LISTEN"):
        if name in env:
            assert listen_port(env[name])[1] == listen_port(r.setting(name))[1], f"Dockerfile ENV {name}={env[name]}"
    users = [re.match(r"(?i)USER\s+(\S+)", ln).group(1) for ln in stage if re.match(r"(?i)USER\s", ln)]
    assert users, "docker/Dockerfile: the node's stage sets no USER (the pod runs as non-root)"
    uid = users[-1].split(":")[0]
    if uid.isdigit():
        assert int(uid) == effective(r.pod, r.container, "runAsUser") == NODE_UID


@pytest.mark.parametrize("target", ALL)
def test_probes(target, r):
    c = r.container
    admin = listen_port(r.setting("SIGNAL_ADMIN_LISTEN"))[1]
    expect = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe, path in expect.items():
        if probe == "startupProbe" and probe not in c:
            continue
        assert probe in c, f"{target}: no {probe}"
        get = c[probe].get("httpGet")
        assert get, f"{target}: {probe} is not an HTTP GET"
        assert get["path"] == path, f"{target}: {probe} on {get['path']}"
        assert get.get("scheme", "HTTP") == "HTTP"
        assert r.port_number(get["port"]) == admin, f"{target}: {probe} not on the admin port"
    # Liveness must not be quicker to kill than the node is to answer a slow loop turn.
    live = c["livenessProbe"]
    assert live.get("failureThreshold", 3) * live.get("periodSeconds", 10) >= 10
    assert c["readinessProbe"].get("successThreshold", 1) == 1


# ---------------------------------------------------------------------------
# Shutdown, security, resources


@pytest.mark.parametrize("target", ALL)
def test_grace_period_covers_prestop_and_drain(target, r):
    pause = prestop_seconds(r.container)
    drain = int(r.setting("SIGNAL_DRAIN_S"))
    close = int(r.setting("SIGNAL_DRAIN_CLOSE_S"))
    grace = r.pod["spec"].get("terminationGracePeriodSeconds", 30)
    assert pause >= 2, f"{target}: preStop pause {pause}s is too short for endpoints to go"
    assert grace > pause + drain + close, \
        f"{target}: terminationGracePeriodSeconds {grace} <= preStop {pause} + drain {drain} + close {close}"
    assert grace - (pause + drain + close) >= 5, f"{target}: less than 5 s of margin before SIGKILL"


@pytest.mark.parametrize("target", ALL)
def test_security_context(target, r):
    assert effective(r.pod, r.container, "runAsUser") == NODE_UID
    for w in r.workloads():
        pod = w["spec"]["template"]
        spec = pod["spec"]
        who = f"{target}: {w['kind']} {w['metadata']['name']}"
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), f"{who}: {flag}"
        assert spec.get("automountServiceAccountToken") is False, f"{who}: mounts an API token it does not need"
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext") or {}
            where = f"{who} container {c['name']}"
            assert effective(pod, c, "runAsNonRoot") is True, where
            uid = effective(pod, c, "runAsUser")
            assert isinstance(uid, int) and uid > 0, f"{where}: runAsUser"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert not sc.get("privileged"), f"{where}: privileged"
            caps = sc.get("capabilities") or {}
            assert caps.get("drop") == ["ALL"] and not caps.get("add"), f"{where}: capabilities {caps}"
            assert (effective(pod, c, "seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: seccomp"
        for v in spec.get("volumes", []):
            assert "hostPath" not in v and "persistentVolumeClaim" not in v, f"{who}: volume {v['name']}"


@pytest.mark.parametrize("target", ALL)
def test_resources(target, r):
    for w in r.workloads():
        for c in w["spec"]["template"]["spec"]["containers"]:
            res = c.get("resources") or {}
            where = f"{target}: {w['metadata']['name']}/{c['name']}"
            for kind in ("cpu", "memory"):
                req = (res.get("requests") or {}).get(kind)
                lim = (res.get("limits") or {}).get(kind)
                assert req and lim, f"{where}: {kind} request and limit"
                assert quantity(req) <= quantity(lim), f"{where}: {kind} request above limit"
    # Memory for SIGNAL_MAX_CONNECTIONS clients: the request holds them, the limit with 50 % to spare.
    res = r.container["resources"]
    clients = int(r.setting("SIGNAL_MAX_CONNECTIONS"))
    need = IDLE_BYTES + BYTES_PER_CLIENT * clients
    assert quantity(res["requests"]["memory"]) >= need, \
        f"{target}: memory request below {need / MIB:.0f} MiB for {clients} clients"
    assert quantity(res["limits"]["memory"]) >= 1.5 * need, \
        f"{target}: memory limit without 50 % headroom over {need / MIB:.0f} MiB for {clients} clients"


# ---------------------------------------------------------------------------
# Autoscaling and disruptions


@pytest.mark.parametrize("target", ALL)
def test_hpa(target, r):
    h = r.hpa
    assert h["apiVersion"] == "autoscaling/v2"
    ref = h["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", r.deployment["metadata"]["name"])
    lo, hi = h["spec"].get("minReplicas", 1), h["spec"]["maxReplicas"]
    assert 1 <= lo <= hi
    # The HPA owns the replica count: a `replicas` in the Deployment would reset it at each apply.
    assert "replicas" not in r.deployment["spec"], f"{target}: Deployment sets replicas under an HPA"
    if target.startswith("dev"):
        assert 1 <= lo and hi <= 3
    else:
        assert lo >= 3, f"{target}: fewer than 3 pods"
    metrics = h["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    down = h["spec"]["behavior"]["scaleDown"]
    assert down.get("stabilizationWindowSeconds", 300) >= 300 and "stabilizationWindowSeconds" in down
    if down.get("selectPolicy") != "Disabled":
        pols = down.get("policies") or []
        assert pols, f"{target}: scale-down without policies removes pods as fast as it likes"
        if len(pols) > 1:
            assert down.get("selectPolicy") == "Min"
        for p in pols:
            assert p["periodSeconds"] >= 60
            assert (p["type"] == "Pods" and p["value"] <= 2) or (p["type"] == "Percent" and p["value"] <= 20), p


@pytest.mark.parametrize("target", ALL)
def test_pdb(target, r):
    pdb = r.one("PodDisruptionBudget", APP)
    sel = pdb["spec"]["selector"]
    assert set(sel) == {"matchLabels"}
    pod_labels = r.pod["metadata"]["labels"]
    assert selects(sel["matchLabels"], pod_labels), f"{target}: PDB does not select the signal-node pods"
    for w in r.workloads():
        if w["metadata"]["name"] != APP:
            assert not selects(sel["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] in (1, 2) or spec["maxUnavailable"] == "1"
    else:  # minAvailable must leave room for one eviction at the minimum replica count
        assert isinstance(spec["minAvailable"], int) and spec["minAvailable"] < r.hpa["spec"].get("minReplicas", 1)


# ---------------------------------------------------------------------------
# Services and network policy


@pytest.mark.parametrize("target", ALL)
def test_services(target, r):
    pod_labels = r.pod["metadata"]["labels"]
    others = [w for w in r.workloads() if w["metadata"]["name"] != APP]
    for name, port_name, number in ((APP, "ws", WS_PORT), (ADMIN_SERVICE, "admin", ADMIN_PORT)):
        svc = r.one("Service", name)
        sel = svc["spec"]["selector"]
        assert selects(sel, pod_labels), f"{target}: Service {name} does not select the pods"
        for w in others:
            assert not selects(sel, w["spec"]["template"]["metadata"]["labels"])
        ports = svc["spec"]["ports"]
        # Each Service exposes its one named port, and nothing else (the client Service never /metrics).
        assert [p["targetPort"] for p in ports] == [port_name], f"{target}: Service {name} ports {ports}"
        assert r.port_number(ports[0]["targetPort"]) == number
        assert ports[0].get("protocol", "TCP") == "TCP"
    assert r.one("Service", APP)["spec"].get("type", "ClusterIP") == "ClusterIP"


def port_set(r, ports, container=None):
    return {(p.get("protocol", "TCP"), r.port_number(p["port"], container) if isinstance(p["port"], str) else p["port"])
            for p in ports}


@pytest.mark.parametrize("target", ALL)
def test_network_policy(target, r):
    np = r.one("NetworkPolicy", APP)["spec"]
    assert selects(np["podSelector"]["matchLabels"], r.pod["metadata"]["labels"])
    assert set(np["policyTypes"]) == {"Ingress", "Egress"}
    # Ingress: each rule names its sources and its ports; the client port and the admin port
    # have different sources (the load balancer never reaches /metrics).
    allowed = {}
    for rule in np["ingress"]:
        assert rule.get("from") and rule.get("ports"), f"{target}: an ingress rule open to all sources or ports"
        for peer in rule["from"]:
            assert "ipBlock" not in peer, f"{target}: ingress from an ipBlock"
            ns = (peer.get("namespaceSelector") or {}).get("matchLabels")
            assert ns, f"{target}: ingress peer without a namespace selector by label: {peer}"
        for p in port_set(r, rule["ports"]):
            allowed.setdefault(p, []).append(json.dumps(rule["from"], sort_keys=True))
    assert set(allowed) == {("TCP", WS_PORT), ("TCP", ADMIN_PORT)}, f"{target}: ingress ports {allowed}"
    assert not set(allowed[("TCP", WS_PORT)]) & set(allowed[("TCP", ADMIN_PORT)]), \
        f"{target}: the client port's sources also reach the admin port"
    # No peer selector carries the pods' own labels: kustomize's commonLabels (or labels with
    # includeSelectors) adds them to every podSelector in a NetworkPolicy, peers included, and
    # then the kube-dns or ingress controller pods no longer match.
    own = set(r.pod["metadata"]["labels"].items())
    for rule in np["ingress"] + np["egress"]:
        for peer in rule.get("from", []) + rule.get("to", []):
            for sel in ("namespaceSelector", "podSelector"):
                pairs = set(((peer.get(sel) or {}).get("matchLabels") or {}).items())
                assert not pairs & own, f"{target}: peer {sel} {dict(pairs)} has the pods' own labels"
    # Egress: Redis and DNS only, each rule limited to its ports.
    out = set()
    for rule in np["egress"]:
        assert rule.get("ports"), f"{target}: an egress rule open to all ports"
        out |= {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
    redis = {("TCP", REDIS_PORT)} | ({("TCP", SENTINEL_PORT)} if "redis-sentinel" in target else set())
    assert out == redis | {("UDP", 53), ("TCP", 53)}, f"{target}: egress ports {out}"
    dns = [rule for rule in np["egress"] if ("UDP", 53) in {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}]
    assert all(rule.get("to") for rule in dns), f"{target}: DNS open to any address"


# ---------------------------------------------------------------------------
# Secrets


def kustomizations(validator):
    """{path: [document]} for every kustomization.yaml under k8s/."""
    paths = sorted(os.path.join(d, "kustomization.yaml") for d, _, files in os.walk(K8S) if "kustomization.yaml" in files)
    assert len(paths) >= 5
    return validator.parse(*paths)


def test_secret_example_holds_no_secret(kubectl, validator):
    path = os.path.join(K8S, "base", "secret.example.yaml")
    (obj,) = validator.parse(path)
    assert validator.check([obj]) == [[]], "secret.example.yaml is not a valid Secret"
    assert obj["kind"] == "Secret" and obj["metadata"]["name"] == SECRET
    assert "data" not in obj, "base64 data could hide a real value: use stringData placeholders"
    values = obj["stringData"]
    # Every key the Deployment reads is shown; every value is a placeholder.
    base = rendered("base", kubectl, validator)
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in base.container["env"]
            if (e.get("valueFrom") or {}).get("secretKeyRef")}
    assert set(values) == keys, f"secret.example.yaml keys {sorted(values)} != {sorted(keys)} read by the pods"
    for k, v in values.items():
        assert PLACEHOLDER in v, f"secret.example.yaml {k}: not a {PLACEHOLDER} placeholder"
        assert len(v.replace(PLACEHOLDER, "")) < 60
    url = urlsplit(values["redis-url"])
    assert url.scheme == "redis" and url.password == PLACEHOLDER and url.hostname.endswith(".example.internal")
    # Not used by any kustomization, and nothing rendered carries a placeholder.
    for path, docs in kustomizations(validator).items():
        assert "secret.example" not in json.dumps(docs), f"{path} uses the example Secret"
    for t in ("base", "production", "dev"):
        for s in rendered(t, kubectl, validator).all("Secret"):
            assert PLACEHOLDER not in json.dumps(secret_values(s)), f"{t}: a placeholder Secret is deployed"


def test_dev_secret_is_marked_dev_only(kubectl, validator):
    r = rendered("dev", kubectl, validator)
    (s,) = r.all("Secret")
    assert s["metadata"].get("annotations", {}).get("signal-node/dev-only") == "true"
    assert "dev-only" in secret_values(s)["jwt-secret"]
    kz = validator.parse(os.path.join(K8S, "overlays", "dev", "kustomization.yaml"))[0]
    assert [g["name"] for g in kz.get("secretGenerator", [])] == [SECRET]
    assert "DEV ONLY" in open(os.path.join(K8S, "overlays", "dev", "kustomization.yaml")).read()


# ---------------------------------------------------------------------------
# Overlays and variants


def test_dev_overlay(kubectl, validator):
    r = rendered("dev", kubectl, validator)
    redis = r.one("Deployment", "signal-redis")
    rpod = redis["spec"]["template"]
    rlabels = rpod["metadata"]["labels"]
    assert redis["spec"].get("replicas", 1) == 1
    assert all("emptyDir" in v for v in rpod["spec"].get("volumes", [])), "dev Redis must not persist"
    assert not r.all("PersistentVolumeClaim")
    (rc,) = rpod["spec"]["containers"]
    svc = r.one("Service", "signal-redis")
    assert selects(svc["spec"]["selector"], rlabels)
    (sp,) = svc["spec"]["ports"]
    assert r.port_number(sp["targetPort"], rc) == REDIS_PORT
    # SIGNAL_REDIS_URL names that Service.
    (s,) = r.all("Secret")
    url = urlsplit(secret_values(s)["redis-url"])
    assert url.scheme == "redis"
    assert url.hostname in (svc["metadata"]["name"], f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc",
                            f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local")
    assert (url.port or 6379) == sp["port"] == REDIS_PORT
    # The node may reach that Redis pod only; Redis takes connections from the nodes only.
    np = r.one("NetworkPolicy", APP)["spec"]
    (rule,) = [x for x in np["egress"] if {p["port"] for p in x["ports"]} == {REDIS_PORT}]
    assert rule.get("to") and all(selects(peer["podSelector"]["matchLabels"], rlabels) and "namespaceSelector" not in peer
                                  for peer in rule["to"])
    rnp = r.one("NetworkPolicy", "signal-redis")["spec"]
    assert selects(rnp["podSelector"]["matchLabels"], rlabels)
    assert set(rnp["policyTypes"]) == {"Ingress", "Egress"} and not rnp.get("egress")
    for x in rnp["ingress"]:
        assert port_set(r, x["ports"], rc) == {("TCP", REDIS_PORT)}
        assert all(selects(peer["podSelector"]["matchLabels"], r.pod["metadata"]["labels"]) for peer in x["from"])
    # One namespace for everything.
    ns = {o["metadata"].get("namespace") for o in r.objs if o["kind"] != "Namespace"}
    assert ns == {r.one("Namespace")["metadata"]["name"]}


def image_pinned(image):
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest", "dev")


def test_production_overlay(kubectl, validator):
    base, prod = rendered("base", kubectl, validator), rendered("production", kubectl, validator)
    assert image_pinned(prod.container["image"]), f"production image not pinned: {prod.container['image']}"
    assert not image_pinned("signal-node") and not image_pinned("registry:5000/signal-node:latest")
    assert prod.container.get("imagePullPolicy") != "Always"
    assert prod.hpa["spec"]["minReplicas"] >= base.hpa["spec"]["minReplicas"]
    assert prod.hpa["spec"]["maxReplicas"] > base.hpa["spec"]["maxReplicas"]
    assert quantity(prod.container["resources"]["limits"]["memory"]) > quantity(base.container["resources"]["limits"]["memory"])
    assert int(prod.setting("SIGNAL_MAX_CONNECTIONS")) >= int(base.setting("SIGNAL_MAX_CONNECTIONS"))
    ns = {o["metadata"].get("namespace") for o in prod.objs}
    assert len(ns) == 1 and None not in ns, f"production namespaces {ns}"
    assert not prod.all("Namespace"), "production must not own (and so delete) its namespace, where the Secret lives"


@pytest.mark.parametrize("target", [t for t in ALL if "hpa-connections" in t])
def test_variant_hpa_connections(target, r, validator):
    metrics = r.hpa["spec"]["metrics"]
    pods = [m for m in metrics if m["type"] == "Pods"]
    assert len(pods) == 1 and pods[0]["pods"]["metric"]["name"] == "signal_connections"
    t = pods[0]["pods"]["target"]
    assert t["type"] == "AverageValue"
    cap = int(r.setting("SIGNAL_MAX_CONNECTIONS"))
    assert 0 < quantity(t["averageValue"]) < cap, f"{target}: target {t['averageValue']} not below the cap {cap}"
    assert any(m["type"] == "Resource" for m in metrics), f"{target}: the CPU metric was dropped"
    # The adapter rule serves that metric, per pod.
    (values,) = validator.parse(os.path.join(K8S, "variants", "hpa-connections", "prometheus-adapter-values.example.yaml"))
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == "signal_connections" and "signal_connections" in rule["seriesQuery"]
    assert rule["resources"]["overrides"]["pod"]["resource"] == "pod"
    assert rule["resources"]["overrides"]["namespace"]["resource"] == "namespace"


@pytest.mark.parametrize("target", [t for t in ALL if "jwt-public-key" in t])
def test_variant_jwt_public_key(target, r):
    assert re.fullmatch(r"(RS|ES)(256|384|512)", r.setting("SIGNAL_JWT_ALG"))
    key_file = r.setting("SIGNAL_JWT_KEY_FILE")
    env = {e["name"] for e in r.container.get("env", [])}
    assert "SIGNAL_JWT_SECRET" not in env
    mounts = [m for m in r.container.get("volumeMounts", []) if key_file.startswith(m["mountPath"].rstrip("/") + "/")]
    assert len(mounts) == 1 and mounts[0].get("readOnly") is True
    (vol,) = [v for v in r.pod["spec"]["volumes"] if v["name"] == mounts[0]["name"]]
    items = {i["path"]: i["key"] for i in vol["configMap"]["items"]}
    assert os.path.relpath(key_file, mounts[0]["mountPath"]) in items


@pytest.mark.parametrize("target", [t for t in ALL if "redis-sentinel" in t])
def test_variant_redis_sentinel(target, r):
    """The sentinels' port is open in the same rule as Redis's, to the same peers."""
    np = r.one("NetworkPolicy", APP)["spec"]
    (rule,) = [x for x in np["egress"] if any(p["port"] == SENTINEL_PORT for p in x["ports"])]
    assert {p["port"] for p in rule["ports"]} == {REDIS_PORT, SENTINEL_PORT}


# ---------------------------------------------------------------------------
# Housekeeping


@pytest.mark.parametrize("target", ALL)
def test_common_labels(target, r):
    for o in r.objs:
        labels = o["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "signal-node" or o["kind"] == "Namespace", \
            f"{target}: {o['kind']} {o['metadata']['name']} lacks the common labels"
    assert r.pod["metadata"]["labels"].get("app.kubernetes.io/part-of") == "signal-node"


def test_every_manifest_is_used(validator):
    """A YAML file beside a kustomization.yaml is listed in it, or is an *.example.yaml."""
    for path, (kz,) in kustomizations(validator).items():
        d = os.path.dirname(path)
        listed = set(kz.get("resources", []))
        for f in os.listdir(d):
            if f.endswith(".yaml") and f != "kustomization.yaml" and not f.endswith(".example.yaml"):
                assert f in listed, f"{os.path.relpath(d, ROOT)}/{f} is not in its kustomization.yaml"
