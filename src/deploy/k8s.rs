//! `squall deploy k8s`: a sharded run as Kubernetes manifests (one YAML stream): a ConfigMap
//! with the scenario and its profile files, a ReadWriteMany claim for the results, an Indexed
//! Job whose pod I runs `squall run --shard I/N` (counted from 0, as the Job numbers its
//! pods), and a Job that waits for the shards and runs `squall merge`.
//!
//! Everything is checked before anything is printed: the scenario loads, its profile is
//! found, the image reference, names and quantities are ones a cluster accepts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::files::{self, Bundle};
use super::yaml::Ordered;
use super::{names, DeployError};
use crate::scenario::{self, LoadOptions, Plan};

/// Where the ConfigMap is mounted in the pods.
pub const SCENARIO_MOUNT: &str = "/scenario";
/// Where the results volume is mounted in the pods.
pub const RESULTS_MOUNT: &str = "/results";
/// The user and group the image runs as (distroless' `nonroot`).
const USER: u32 = 65532;
/// Added to the merge's wait beyond the planned end: slow pulls, a late start, the close.
const MERGE_SLACK: Duration = Duration::from_secs(600);

/// What `squall deploy k8s` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario file.
    pub scenario: PathBuf,
    /// How many generator pods (shards); at least 1.
    pub shards: u32,
    /// The container image holding `squall` (deploy/k8s/Dockerfile builds one).
    pub image: String,
    /// The namespace of every object [default: none written, so `kubectl -n` decides].
    pub namespace: Option<String>,
    /// The run's name, the prefix of every object [default: the scenario's name and the
    /// start time, e.g. `kite-soak-20261207-140000`].
    pub name: Option<String>,
    /// Replaces the scenario's `target:` (the address the pods reach the system under test at).
    pub target: Option<String>,
    /// Where profiles are looked for first (as `squall run --schemas`).
    pub schemas: Option<PathBuf>,
    /// The shards' common start [default: `now + start_in`].
    pub start_at: Option<SystemTime>,
    /// How long after `now` the shards start when `start_at` is not given.
    pub start_in: Duration,
    /// Where results go.
    pub storage: Storage,
    /// The size of a new claim (a Kubernetes quantity, e.g. `1Gi`).
    pub storage_size: String,
    /// Each generator's CPU, requested and its limit (e.g. `2`, `1500m`).
    pub cpu: String,
    /// Each generator's memory, requested and its limit (e.g. `1Gi`).
    pub memory: String,
    /// Environment variables for `{{env.NAME}}`, by name, with their values here.
    pub env: Vec<(String, String)>,
    /// Serve live Prometheus metrics from each generator on this port.
    pub metrics_port: Option<u16>,
    /// The time the manifests are made at (the default start counts from it).
    pub now: SystemTime,
}

/// The manifests, ready to print, and what they were made of.
#[derive(Debug)]
pub struct Manifests {
    /// The YAML stream (comments, then one document per object).
    pub yaml: String,
    /// The run's name (every object's prefix).
    pub run: String,
    /// The shards' common start.
    pub start_at: SystemTime,
}

/// Checks `o` and makes the manifests.
pub fn manifests(o: &Options) -> Result<Manifests, DeployError> {
    check_flags(o)?;
    let start_at = start_time(o)?;
    let plan = load(o)?;
    let bundle = files::gather(&o.scenario, &plan, o.schemas.as_deref())?;
    let run = match &o.name {
        Some(n) if names::label(n, 47) => n.clone(),
        Some(n) => {
            return Err(DeployError::Usage(format!(
                "--name '{n}': at most 47 lowercase letters, digits and '-', starting and \
                 ending with a letter or digit"
            )))
        }
        None => format!("{}-{}", names::to_label(&plan.name, 30), stamp(start_at)),
    };
    let k = Kube {
        o,
        run: &run,
        plan: &plan,
        start_at,
    };
    let yaml = k.render(&bundle)?;
    Ok(Manifests {
        yaml,
        run,
        start_at,
    })
}

/// Checks the flags that need no scenario: shards, image, namespace and quantities.
fn check_flags(o: &Options) -> Result<(), DeployError> {
    let usage = |m: String| Err(DeployError::Usage(m));
    if o.shards == 0 {
        return usage(
            "--shards 0: at least one generator pod is needed; write e.g. --shards 4".into(),
        );
    }
    names::image(&o.image).map_err(DeployError::Usage)?;
    if let Some(ns) = o.namespace.as_deref().filter(|n| !names::label(n, 63)) {
        return usage(format!(
            "--namespace '{ns}': a namespace is at most 63 lowercase letters, digits and '-'"
        ));
    }
    for (flag, q) in [
        ("--cpu", &o.cpu),
        ("--memory", &o.memory),
        ("--storage-size", &o.storage_size),
    ] {
        if !names::quantity(q) {
            return usage(format!(
                "{flag} '{q}': not a Kubernetes quantity; write e.g. 2, 500m, 1Gi"
            ));
        }
    }
    Ok(())
}

/// When the shards start: `--start-at`, which must not be past, else `--start-in` from now
/// on a whole second.
fn start_time(o: &Options) -> Result<SystemTime, DeployError> {
    match o.start_at {
        Some(t) if t <= o.now => Err(DeployError::Usage(format!(
            "--start-at {} is already past; give a time after the pods can start, or \
             leave it out (start in {} from now)",
            humantime::format_rfc3339_seconds(t),
            humantime::format_duration(o.start_in)
        ))),
        Some(t) => Ok(t),
        None => Ok(whole_second_after(o.now + o.start_in)),
    }
}

/// The scenario loads here as it will in the pods: with the target given and only the
/// environment variables passed on.
fn load(o: &Options) -> Result<Plan, DeployError> {
    let opts = LoadOptions {
        target: o.target.clone(),
        env: o.env.iter().cloned().collect::<HashMap<_, _>>(),
        ..LoadOptions::default()
    };
    Ok(scenario::load_file(&o.scenario, &opts)?)
}

fn whole_second_after(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(since.as_secs() + u64::from(since.subsec_nanos() > 0))
}

/// `20261207-140000` for 2026-12-07T14:00:00Z.
fn stamp(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}", &digits[..8], &digits[8..14])
}

/// One run's objects.
struct Kube<'a> {
    o: &'a Options,
    run: &'a str,
    plan: &'a Plan,
    start_at: SystemTime,
}

impl Kube<'_> {
    fn render(&self, bundle: &Bundle) -> Result<String, DeployError> {
        let mut docs = vec![(
            "the scenario and the files it needs, mounted at /scenario",
            self.config_map(bundle),
        )];
        if let Storage::Claim { class } = &self.o.storage {
            docs.push((
                "where the shards write their results and the merge reads them",
                self.claim(class.as_deref()),
            ));
        }
        docs.push((
            "the generators: pod I runs shard I+1 of N",
            self.shards_job(bundle),
        ));
        docs.push((
            "waits for every shard's results, then merges them",
            self.merge_job(),
        ));
        let mut out = self.header();
        for (what, doc) in docs {
            let text = serde_saphyr::to_string(&Ordered(&doc)).map_err(|e| {
                DeployError::Usage(format!("the manifests could not be written as YAML: {e}"))
            })?;
            out.push_str(&format!("---\n# {what}\n{text}"));
        }
        Ok(out)
    }

    fn header(&self) -> String {
        let t = humantime::format_rfc3339_seconds(self.start_at);
        let n = self.o.shards;
        let run = self.run;
        format!(
            "# squall deploy k8s: {n} shards of {scenario} (run {run}).\n\
             # Apply before {t} (kubectl apply -f FILE): every shard waits until then so\n\
             # that their phases line up; a pod that starts later begins late and says so.\n\
             # Watch: kubectl logs -f job/{run}-merge\n\
             # Merged results: {RESULTS_MOUNT}/{run}/merged in the results volume.\n",
            scenario = self.o.scenario.display(),
        )
    }

    fn meta(&self, name: &str, component: &str) -> Value {
        let mut m = json!({ "name": name, "labels": self.labels(component) });
        if let Some(ns) = &self.o.namespace {
            m["namespace"] = json!(ns);
        }
        m
    }

    fn labels(&self, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "squall",
            "app.kubernetes.io/instance": self.run,
            "app.kubernetes.io/component": component,
        })
    }

    fn config_map(&self, bundle: &Bundle) -> Value {
        let mut data = serde_json::Map::new();
        let mut binary = serde_json::Map::new();
        for (key, (_, bytes)) in keys(bundle).iter().zip(&bundle.files) {
            match std::str::from_utf8(bytes) {
                Ok(text) => data.insert(key.clone(), json!(text)),
                Err(_) => {
                    use base64::Engine;
                    binary.insert(
                        key.clone(),
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    )
                }
            };
        }
        let mut cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(&format!("{}-scenario", self.run), "scenario"),
            "data": data,
        });
        if !binary.is_empty() {
            cm["binaryData"] = Value::Object(binary);
        }
        cm
    }

    fn claim(&self, class: Option<&str>) -> Value {
        let mut spec = json!({
            "accessModes": ["ReadWriteMany"],
            "resources": { "requests": { "storage": self.o.storage_size } },
        });
        if let Some(c) = class {
            spec["storageClassName"] = json!(c);
        }
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": self.meta(&self.claim_name(), "results"),
            "spec": spec,
        })
    }

    fn claim_name(&self) -> String {
        match &self.o.storage {
            Storage::Claim { .. } => format!("{}-results", self.run),
            Storage::Existing(n) => n.clone(),
        }
    }

    /// The shards' folder for pod `index` (a literal or `$(JOB_COMPLETION_INDEX)`).
    fn shard_dir(&self, index: &str) -> String {
        format!("{RESULTS_MOUNT}/{}/shard-{index}", self.run)
    }

    /// The generators' command line after `squall`.
    fn run_args(&self, bundle: &Bundle) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            format!("{SCENARIO_MOUNT}/{}", bundle.scenario),
            "--shard".into(),
            format!("$(JOB_COMPLETION_INDEX)/{}", self.o.shards),
            "--shard-base".into(),
            "0".into(),
            "--start-at".into(),
            humantime::format_rfc3339_seconds(self.start_at).to_string(),
            // One seed for every shard, also when the scenario draws its own: the merge
            // refuses shards of different seeds.
            "--seed".into(),
            self.plan.seed.to_string(),
            "--out".into(),
            self.shard_dir("$(JOB_COMPLETION_INDEX)"),
            // The merge draws the report of the whole run.
            "--no-report".into(),
        ];
        if let Some(t) = &self.o.target {
            a.extend(["--target".into(), t.clone()]);
        }
        if let Some(p) = self.o.metrics_port {
            a.extend(["--metrics-listen".into(), format!("0.0.0.0:{p}")]);
        }
        a
    }

    /// How long the merge waits for the shards: until the planned end, and some.
    fn merge_wait(&self) -> Duration {
        let to_start = self.start_at.duration_since(self.o.now).unwrap_or_default();
        to_start + self.plan.load.duration() + self.plan.graceful_stop + MERGE_SLACK
    }

    fn merge_args(&self) -> Vec<String> {
        let mut a = vec!["merge".to_string()];
        a.extend((0..self.o.shards).map(|i| self.shard_dir(&i.to_string())));
        a.extend([
            "--out".into(),
            format!("{RESULTS_MOUNT}/{}/merged", self.run),
            "--wait".into(),
            format!("{}s", self.merge_wait().as_secs()),
        ]);
        a
    }

    fn shards_job(&self, bundle: &Bundle) -> Value {
        let n = self.o.shards;
        let mut pod = self.pod("generator", self.run_args(bundle), true);
        pod["spec"]["volumes"][0]["configMap"]["items"] = keys(bundle)
            .iter()
            .zip(&bundle.files)
            .map(|(k, (path, _))| json!({ "key": k, "path": path }))
            .collect();
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.meta(&format!("{}-shards", self.run), "generator"),
            "spec": {
                "completionMode": "Indexed",
                "completions": n,
                "parallelism": n,
                // A shard run again would start late and out of phase, and a shard whose
                // thresholds failed (exit 1) has valid results: no retries, and one index
                // failing leaves the others running.
                "backoffLimitPerIndex": 0,
                "activeDeadlineSeconds": self.merge_wait().as_secs(),
                "template": pod,
            },
        })
    }

    fn merge_job(&self) -> Value {
        let mut pod = self.pod("merge", self.merge_args(), false);
        pod["spec"]["volumes"] = json!([self.results_volume(), tmp_volume()]);
        pod["spec"]["containers"][0]["volumeMounts"] = json!([
            { "name": "results", "mountPath": RESULTS_MOUNT },
            { "name": "tmp", "mountPath": "/tmp" },
        ]);
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.meta(&format!("{}-merge", self.run), "merge"),
            "spec": {
                // Exit 1 (a threshold failed on the merged figures) is an answer, not a fault.
                "backoffLimit": 0,
                "activeDeadlineSeconds": (self.merge_wait() + MERGE_SLACK).as_secs(),
                "template": pod,
            },
        })
    }

    fn results_volume(&self) -> Value {
        json!({ "name": "results", "persistentVolumeClaim": { "claimName": self.claim_name() } })
    }

    /// A pod template running `squall ARGS`; a generator gets its resources, its own port
    /// range and spreads over the nodes.
    fn pod(&self, component: &str, args: Vec<String>, generator: bool) -> Value {
        let mut security = json!({
            "runAsNonRoot": true,
            "runAsUser": USER,
            "runAsGroup": USER,
            // Makes the results volume writable by the group (where the volume honours it).
            "fsGroup": USER,
            "seccompProfile": { "type": "RuntimeDefault" },
        });
        let mut resources = json!({
            "requests": { "cpu": "250m", "memory": "256Mi" },
            "limits": { "memory": self.o.memory },
        });
        let mut env = vec![json!({ "name": "TMPDIR", "value": "/tmp" })];
        let mut spec = json!({ "restartPolicy": "Never" });
        if generator {
            // Each pod has its own network namespace; a namespaced (safe) sysctl widens its
            // ephemeral ports to ~64k per target address.
            security["sysctls"] =
                json!([{ "name": "net.ipv4.ip_local_port_range", "value": "1024 65535" }]);
            // Requests = limits: the Guaranteed class, no CPU shared with a noisy neighbour
            // that would show up as generator lag.
            let r = json!({ "cpu": self.o.cpu, "memory": self.o.memory });
            resources = json!({ "requests": r, "limits": r });
            env.extend(
                self.o
                    .env
                    .iter()
                    .map(|(k, v)| json!({ "name": k, "value": v })),
            );
            spec["affinity"] = self.spread();
        }
        let mut container = self.container(args, env, resources);
        if let (true, Some(p)) = (generator, self.o.metrics_port) {
            container["ports"] = json!([{ "name": "metrics", "containerPort": p }]);
        }
        spec["securityContext"] = security;
        spec["containers"] = json!([container]);
        spec["volumes"] = json!([
            { "name": "scenario", "configMap": { "name": format!("{}-scenario", self.run) } },
            self.results_volume(),
            tmp_volume(),
        ]);
        json!({ "metadata": { "labels": self.labels(component) }, "spec": spec })
    }

    /// The squall container: unprivileged, its root read-only, the scenario, results and
    /// a scratch folder mounted.
    fn container(&self, args: Vec<String>, env: Vec<Value>, resources: Value) -> Value {
        json!({
            "name": "squall",
            "image": self.o.image,
            "command": ["squall"],
            "args": args,
            "env": env,
            "resources": resources,
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": { "drop": ["ALL"] },
            },
            "volumeMounts": [
                { "name": "scenario", "mountPath": SCENARIO_MOUNT, "readOnly": true },
                { "name": "results", "mountPath": RESULTS_MOUNT },
                { "name": "tmp", "mountPath": "/tmp" },
            ],
        })
    }

    /// Generators prefer nodes without another of this run's generators: one node's NIC,
    /// conntrack table and CPUs are not shared between shards when there are nodes enough.
    fn spread(&self) -> Value {
        json!({ "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": { "matchLabels": self.labels("generator") },
            },
        }]}})
    }
}

fn tmp_volume() -> Value {
    json!({ "name": "tmp", "emptyDir": { "sizeLimit": "256Mi" } })
}

/// A ConfigMap key per file (keys cannot hold `/`): its index and its file name.
fn keys(bundle: &Bundle) -> Vec<String> {
    bundle
        .files
        .iter()
        .enumerate()
        .map(|(i, (path, _))| {
            let base = Path::new(path)
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            let safe: String = base
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .take(200)
                .collect();
            format!("f{i}-{safe}")
        })
        .collect()
}

mod storage;
#[cfg(test)]
mod tests;

pub use storage::Storage;
