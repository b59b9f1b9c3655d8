//! Offline validation of the Kubernetes manifests in `deploy/k8s/` (issue #8): every file parses as
//! YAML, every object has what the API server requires, the agents are an Indexed Job whose shard
//! count agrees with `completions` and `parallelism`, volumes and ConfigMap keys resolve, the
//! commands parse with callsbench's own command line, the scenario in the ConfigMap is valid, and
//! the merge Job lists exactly one directory per shard. Each check is also shown failing on a
//! defect planted into the committed text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;
use serde_json::Value;

use callsbench::scenario::units::parse_wall_clock;
use callsbench::scenario::{MediaCheck, Scenario, ShardSpec};

/// One parsed YAML document and the file it came from.
#[derive(Debug, Clone)]
struct Object {
    file: String,
    doc: Value,
}

impl Object {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("")
    }
    fn at(&self) -> String {
        format!("{} {}/{}", self.file, self.kind(), self.name())
    }
}

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s")
}

/// The committed manifests as (file name, text), sorted by name.
fn committed() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Parses every document of every file; a YAML error is a defect.
fn parse(files: &[(String, String)]) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (file, text) in files {
        for doc in serde_norway::Deserializer::from_str(text) {
            let doc = Value::deserialize(doc).map_err(|e| format!("{file}: {e}"))?;
            if !doc.is_null() {
                out.push(Object {
                    file: file.clone(),
                    doc,
                });
            }
        }
    }
    Ok(out)
}

/// Expands Kubernetes `$(VAR)` references in an argument with the given values.
fn expand(arg: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut s = arg.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("$({k})"), v);
    }
    s
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything wrong with a set of manifests, one sentence per defect (empty when valid).
fn defects(objects: &[Object]) -> Vec<String> {
    let mut d = Vec::new();
    let mut names = BTreeSet::new();
    for o in objects {
        for key in ["apiVersion", "kind"] {
            if o.doc[key].as_str().is_none_or(str::is_empty) {
                d.push(format!("{}: missing {key}", o.file));
            }
        }
        if o.name().is_empty() {
            d.push(format!("{}: missing metadata.name", o.at()));
        }
        if !names.insert((o.kind().to_owned(), o.name().to_owned())) {
            d.push(format!("{}: defined twice", o.at()));
        }
    }
    let by_kind = |k: &'static str| objects.iter().filter(move |o| o.kind() == k);
    let config_maps: BTreeMap<&str, &Value> = by_kind("ConfigMap")
        .map(|o| (o.name(), &o.doc["data"]))
        .collect();
    let claims: BTreeSet<&str> = by_kind("PersistentVolumeClaim").map(|o| o.name()).collect();
    for o in by_kind("ConfigMap") {
        if !o.doc["data"].is_object() {
            d.push(format!("{}: data must be a map", o.at()));
        }
    }
    for o in by_kind("PersistentVolumeClaim") {
        if o.doc["apiVersion"] != "v1" {
            d.push(format!("{}: apiVersion must be v1", o.at()));
        }
        if strings(&o.doc["spec"]["accessModes"]).is_empty() {
            d.push(format!("{}: spec.accessModes is empty", o.at()));
        }
        if o.doc["spec"]["resources"]["requests"]["storage"].is_null() {
            d.push(format!(
                "{}: spec.resources.requests.storage is missing",
                o.at()
            ));
        }
    }

    let mut agent_shards: Option<(u64, String)> = None;
    let mut merge_dirs: Vec<(String, Vec<String>)> = Vec::new();
    for o in by_kind("Job") {
        let at = o.at();
        if o.doc["apiVersion"] != "batch/v1" {
            d.push(format!("{at}: apiVersion must be batch/v1"));
        }
        let spec = &o.doc["spec"];
        let completions = spec["completions"].as_u64();
        let parallelism = spec["parallelism"].as_u64();
        let pod = &spec["template"]["spec"];
        match pod["restartPolicy"].as_str() {
            Some("Never" | "OnFailure") => {}
            other => d.push(format!(
                "{at}: template.spec.restartPolicy must be Never or OnFailure, found {other:?}"
            )),
        }
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .collect();
        for (name, v) in &volumes {
            if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str()
                && !claims.contains(claim)
            {
                d.push(format!(
                    "{at}: volume {name} claims {claim}, which no manifest declares"
                ));
            }
            if let Some(cm) = v["configMap"]["name"].as_str() {
                match config_maps.get(cm) {
                    None => d.push(format!(
                        "{at}: volume {name} uses ConfigMap {cm}, which no manifest declares"
                    )),
                    Some(data) => {
                        for item in v["configMap"]["items"].as_array().into_iter().flatten() {
                            let key = item["key"].as_str().unwrap_or("");
                            if data.get(key).is_none() {
                                d.push(format!(
                                    "{at}: volume {name} maps key {key:?}, missing from ConfigMap {cm}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        if containers.is_empty() {
            d.push(format!("{at}: template.spec.containers is empty"));
        }
        for c in &containers {
            let cname = c["name"].as_str().unwrap_or("?");
            if c["image"].as_str().is_none_or(str::is_empty) {
                d.push(format!("{at}: container {cname} has no image"));
            }
            let command = strings(&c["command"]);
            if command.is_empty() {
                d.push(format!("{at}: container {cname} has no command"));
            }
            // Every mount names a declared volume; remember which file paths it makes readable.
            let mut files: BTreeMap<String, Option<(String, String)>> = BTreeMap::new();
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let vname = m["name"].as_str().unwrap_or("");
                let mount = m["mountPath"].as_str().unwrap_or("");
                match volumes.get(vname) {
                    None => d.push(format!(
                        "{at}: container {cname} mounts volume {vname:?}, which the pod does not declare"
                    )),
                    Some(v) => {
                        if let Some(cm) = v["configMap"]["name"].as_str() {
                            let items = v["configMap"]["items"].as_array();
                            let keys: Vec<(String, String)> = match items {
                                Some(items) => items
                                    .iter()
                                    .map(|i| {
                                        (
                                            i["key"].as_str().unwrap_or("").to_owned(),
                                            i["path"].as_str().unwrap_or("").to_owned(),
                                        )
                                    })
                                    .collect(),
                                None => config_maps
                                    .get(cm)
                                    .and_then(|data| data.as_object())
                                    .map(|m| m.keys().map(|k| (k.clone(), k.clone())).collect())
                                    .unwrap_or_default(),
                            };
                            for (key, path) in keys {
                                files.insert(
                                    format!("{}/{path}", mount.trim_end_matches('/')),
                                    Some((cm.to_owned(), key)),
                                );
                            }
                        } else {
                            files.insert(mount.trim_end_matches('/').to_owned(), None);
                        }
                    }
                }
            }
            // Environment: ConfigMap keys must exist; $(VAR) values for the command-line check.
            let mut vars: BTreeMap<&str, String> = BTreeMap::new();
            for e in c["env"].as_array().into_iter().flatten() {
                let Some(name) = e["name"].as_str() else {
                    d.push(format!(
                        "{at}: container {cname} has an env entry without a name"
                    ));
                    continue;
                };
                let from = &e["valueFrom"];
                if let Some(cm) = from["configMapKeyRef"]["name"].as_str() {
                    let key = from["configMapKeyRef"]["key"].as_str().unwrap_or("");
                    match config_maps.get(cm).and_then(|data| data.get(key)) {
                        Some(v) => {
                            vars.insert(name, v.as_str().unwrap_or("").to_owned());
                        }
                        None => d.push(format!(
                            "{at}: env {name} reads key {key:?} of ConfigMap {cm}, which does not exist"
                        )),
                    }
                } else if from["fieldRef"]["fieldPath"]
                    .as_str()
                    .is_some_and(|p| p.contains("batch.kubernetes.io/job-completion-index"))
                {
                    vars.insert(name, "0".to_owned());
                } else if let Some(v) = e["value"].as_str() {
                    vars.insert(name, v.to_owned());
                }
            }
            let args = strings(&c["args"]);
            // The command line must be one callsbench accepts (with index 0 substituted).
            let argv: Vec<String> = std::iter::once("callsbench".to_owned())
                .chain(command.iter().skip(1).cloned())
                .chain(args.iter().map(|a| expand(a, &vars)))
                .collect();
            if !command
                .first()
                .is_some_and(|c| c.ends_with("/callsbench") || c == "callsbench")
            {
                d.push(format!("{at}: container {cname} does not run callsbench"));
                continue;
            }
            if let Err(e) = callsbench::cli::Cli::try_parse_from(&argv) {
                d.push(format!(
                    "{at}: callsbench rejects the arguments {argv:?}: {}",
                    e.to_string().lines().next().unwrap_or("")
                ));
                continue;
            }
            match args.first().map(String::as_str) {
                Some("run") => {
                    if spec["completionMode"] != "Indexed" {
                        d.push(format!("{at}: an agent Job needs completionMode: Indexed"));
                    }
                    if completions.is_none() || completions != parallelism {
                        d.push(format!(
                            "{at}: completions ({completions:?}) must equal parallelism ({parallelism:?}) so every shard runs at once"
                        ));
                    }
                    let flag = |f: &str| {
                        args.iter()
                            .position(|a| a == f)
                            .and_then(|i| args.get(i + 1))
                            .cloned()
                    };
                    match flag("--shard") {
                        None => d.push(format!("{at}: the agent command has no --shard")),
                        Some(raw) => {
                            // 1-based on the command line; the Job's index is 0-based.
                            if !raw.starts_with("$(JOB_COMPLETION_INDEX)+1/") {
                                d.push(format!(
                                    "{at}: --shard {raw} does not take the index from $(JOB_COMPLETION_INDEX)+1"
                                ));
                            }
                            if !vars.contains_key("JOB_COMPLETION_INDEX") {
                                d.push(format!(
                                    "{at}: JOB_COMPLETION_INDEX is not in env, so $(JOB_COMPLETION_INDEX) would not expand"
                                ));
                            }
                            // Every pod index 0..completions must name a distinct valid shard.
                            for index in 0..completions.unwrap_or(0) {
                                let mut v = vars.clone();
                                v.insert("JOB_COMPLETION_INDEX", index.to_string());
                                match expand(&raw, &v).parse::<ShardSpec>() {
                                    Ok(s) if Some(u64::from(s.count().get())) != completions => {
                                        d.push(format!(
                                            "{at}: --shard says {} shards, completions is {completions:?}",
                                            s.count()
                                        ));
                                        break;
                                    }
                                    Ok(s) if u64::from(s.index()) != index => {
                                        d.push(format!("{at}: pod {index} would run shard {s}"));
                                        break;
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        d.push(format!("{at}: --shard {raw} for pod {index}: {e}"));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    match flag("--start-at") {
                        None => d.push(format!(
                            "{at}: the agent command has no --start-at, so shards would not start together"
                        )),
                        Some(raw) => {
                            if let Err(e) = parse_wall_clock(&expand(&raw, &vars)) {
                                d.push(format!("{at}: --start-at {raw}: {e}"));
                            }
                        }
                    }
                    if let Some(out) = flag("--out") {
                        if !out.contains("$(JOB_COMPLETION_INDEX)") {
                            d.push(format!("{at}: --out {out} is the same for every shard"));
                        }
                        agent_shards = completions.map(|n| (n, out));
                    }
                    // The scenario file is a key of a mounted ConfigMap, and a valid scenario.
                    let scenario = args.get(1).cloned().unwrap_or_default();
                    match files.get(&scenario) {
                        Some(Some((cm, key))) => {
                            let text = config_maps[cm.as_str()][key.as_str()]
                                .as_str()
                                .unwrap_or("");
                            if let Err(e) =
                                Scenario::from_toml(text, Path::new(&scenario), MediaCheck::Skip)
                            {
                                d.push(format!("{at}: scenario in ConfigMap {cm}: {e}"));
                            }
                        }
                        _ => d.push(format!(
                            "{at}: {scenario} is not a key of a ConfigMap mounted in container {cname}"
                        )),
                    }
                }
                Some("merge") => {
                    let dirs: Vec<String> = args[1..]
                        .iter()
                        .take_while(|a| !a.starts_with("--"))
                        .cloned()
                        .collect();
                    merge_dirs.push((at.clone(), dirs));
                }
                _ => {}
            }
            // Results must land on a mounted volume.
            for a in &args {
                if a.starts_with("/results") && !files.keys().any(|m| a.starts_with(m.as_str())) {
                    d.push(format!(
                        "{at}: {a} is not on a volume mounted in container {cname}"
                    ));
                }
            }
        }
    }
    match (&agent_shards, merge_dirs.as_slice()) {
        (None, _) => d.push("no agent Job (an Indexed Job running `callsbench run`)".to_owned()),
        (Some(_), []) => d.push("no merge Job (running `callsbench merge`)".to_owned()),
        (Some((n, out)), merges) => {
            let expected: Vec<String> = (0..*n)
                .map(|i| out.replace("$(JOB_COMPLETION_INDEX)", &i.to_string()))
                .collect();
            for (at, dirs) in merges {
                if *dirs != expected {
                    d.push(format!(
                        "{at}: merges {dirs:?}, the agents write {expected:?}"
                    ));
                }
            }
        }
    }
    d
}

fn check_text(files: &[(String, String)]) -> Vec<String> {
    match parse(files) {
        Ok(objects) => defects(&objects),
        Err(e) => vec![e],
    }
}

/// The committed files with `from` replaced by `to` in `file` (which must contain it).
fn planted(file: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let mut files = committed();
    let (_, text) = files.iter_mut().find(|(n, _)| n == file).unwrap();
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    *text = text.replacen(from, to, 1);
    files
}

#[test]
fn committed_manifests_are_valid() {
    let files = committed();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "agents-job.yaml",
            "merge-job.yaml",
            "results-pvc.yaml",
            "scenario-configmap.yaml"
        ]
    );
    let objects = parse(&files).unwrap();
    assert_eq!(objects.len(), 4);
    assert_eq!(defects(&objects), Vec::<String>::new());
}

#[test]
fn agent_image_matches_the_scenario_media_dir() {
    // The ConfigMap's scenario points [media] dir at the samples the Dockerfile copies in.
    let dockerfile = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agent/Dockerfile"),
    )
    .unwrap();
    let objects = parse(&committed()).unwrap();
    let cm = objects.iter().find(|o| o.kind() == "ConfigMap").unwrap();
    let text = cm.doc["data"]["scenario.toml"].as_str().unwrap();
    let v: toml::Value = toml::from_str(text).unwrap();
    let dir = v["media"]["dir"].as_str().unwrap();
    assert!(
        dockerfile.contains(&format!("COPY media/ {dir}/")),
        "Dockerfile does not copy the media to {dir}"
    );
    let s =
        Scenario::from_toml(text, Path::new("/scenario/scenario.toml"), MediaCheck::Skip).unwrap();
    assert_eq!(s.call_count(), 6);
    assert_eq!(s.media().camera(), Path::new(dir).join("camera.ivf"));
}

#[test]
fn planted_defects_are_found() {
    let cases: [(&str, &str, &str, &str); 15] = [
        (
            "agents-job.yaml",
            "completions: 3",
            "completions: 4",
            "completions",
        ),
        (
            "agents-job.yaml",
            "parallelism: 3",
            "parallelism: 2",
            "parallelism",
        ),
        (
            "agents-job.yaml",
            "$(JOB_COMPLETION_INDEX)+1/3",
            "$(JOB_COMPLETION_INDEX)+1/4",
            "--shard says 4 shards",
        ),
        (
            "agents-job.yaml",
            "$(JOB_COMPLETION_INDEX)+1/3",
            "$(JOB_COMPLETION_INDEX)/3",
            "for pod 0: expected a shard",
        ),
        (
            "agents-job.yaml",
            "completionMode: Indexed",
            "completionMode: NonIndexed",
            "completionMode: Indexed",
        ),
        (
            "agents-job.yaml",
            "restartPolicy: Never",
            "restartPolicy: Always",
            "restartPolicy",
        ),
        (
            "agents-job.yaml",
            "mountPath: /results",
            "mountPath: /data",
            "not on a volume",
        ),
        (
            "agents-job.yaml",
            "- name: results\n          persistentVolumeClaim",
            "- name: output\n          persistentVolumeClaim",
            "does not declare",
        ),
        (
            "agents-job.yaml",
            "key: start-at",
            "key: start_at",
            "\"start_at\" of ConfigMap",
        ),
        (
            "agents-job.yaml",
            "- key: scenario.toml",
            "- key: scenario.yaml",
            "missing from ConfigMap",
        ),
        (
            "agents-job.yaml",
            "--start-at",
            "--begin-at",
            "rejects the arguments",
        ),
        (
            "merge-job.yaml",
            "            - /results/$(RUN_ID)/shard-2\n",
            "",
            "the agents write",
        ),
        (
            "results-pvc.yaml",
            "name: callsbench-results",
            "name: results",
            "no manifest declares",
        ),
        (
            "scenario-configmap.yaml",
            "participants = 6",
            "participants = 0",
            "scenario in ConfigMap",
        ),
        (
            "scenario-configmap.yaml",
            "start-at: \"@",
            "start-at: \"",
            "expected a wall-clock time",
        ),
    ];
    for (file, from, to, expect) in cases {
        let found = check_text(&planted(file, from, to));
        assert!(
            found.iter().any(|d| d.contains(expect)),
            "{file}: {from:?} -> {to:?} should report {expect:?}, got {found:#?}"
        );
    }
    // Broken YAML and a missing image are found too.
    let found = check_text(&planted(
        "agents-job.yaml",
        "  completions: 3",
        "completions: [3",
    ));
    assert!(found[0].starts_with("agents-job.yaml:"), "{found:?}");
    let found = check_text(&planted(
        "merge-job.yaml",
        "image: callsbench/agent:dev",
        "image: \"\"",
    ));
    assert!(
        found.iter().any(|d| d.contains("has no image")),
        "{found:?}"
    );
}

/// The agent image runs a shard of the ConfigMap's kind of scenario the way a pod does: scenario
/// mounted at /scenario, media from the image, results on a mounted volume, against an SFU on this
/// host (host network). Needs Docker and the image: `deploy/agent/build-image.sh`.
#[test]
#[ignore = "needs Docker and the agent image (deploy/agent/build-image.sh)"]
fn agent_image_runs_a_shard_like_a_pod() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("callsbench-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("results")).unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        "name = \"image\"\nseed = 3\n[phases]\njoin = \"1s\"\nsettle = \"1s\"\nsteady = \"3s\"\n\
         leave = \"1s\"\n[[calls]]\ncount = 2\nparticipants = 2\nunmuted = 1\n\
         [media]\ndir = \"/usr/share/callsbench/media\"\n",
    )
    .unwrap();
    let program = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("callsref");
    assert!(
        program.is_file(),
        "build callsref first: cargo build -p callsref"
    );
    let sfu = callsbench::target::embedded::EmbeddedSfu::spawn(&program, &dir.join("sfu")).unwrap();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3;
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "host", "-v"])
        .arg(format!("{}:/scenario/scenario.toml:ro", scenario.display()))
        .arg("-v")
        .arg(format!("{}:/results", dir.join("results").display()))
        .args([
            "callsbench/agent:dev",
            "run",
            "/scenario/scenario.toml",
            "--shard",
            "0+1/2",
            "--start-at",
            &format!("@{start}"),
            "--rtcd",
            &format!("http://{}", sfu.host().addr),
            "--out",
            "/results/shard-0",
            "--no-report",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = callsbench::report::RunResult::read(&dir.join("results/shard-0")).unwrap();
    assert_eq!(r.manifest.scenario.flows.sessions, 2, "one call of two");
    assert_eq!(r.summary.qoe.joins, 2);
    assert_eq!(r.manifest.shards[0].index, 0);
    assert!(r.summary.benchmark.bandwidth_in_bps.unwrap() > 50_000.0);
    drop(sfu);
    let _ = std::fs::remove_dir_all(&dir);
}
