//! `sinter build --target`: the target lands in the plan header, `inspect` shows it, and
//! `run`/`bench` refuse a plan built for another architecture with an error naming both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/ch_ppocr_mobile_v2.0_cls_infer.onnx");

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter")).args(args).output().expect("run sinter")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinter-cli-target-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// Builds the bundled model for `target` (None: the default) and returns the plan path.
fn build(target: Option<&str>) -> PathBuf {
    let plan = tmp(&format!("cls-{}.plan", target.unwrap_or("default")));
    let mut args = vec!["build", BUNDLED, "-o", plan.to_str().unwrap(), "--shapes", "x:1x3x48x192"];
    if let Some(t) = target {
        args.extend(["--target", t]);
    }
    let out = sinter(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    plan
}

fn inspect_target(plan: &Path) -> String {
    let out = sinter(&["inspect", plan.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["target"].as_str().unwrap().to_string()
}

/// This machine's target name and the other architecture's.
fn host_and_other() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("aarch64", "x86_64"),
        _ => ("x86_64", "aarch64"),
    }
}

#[test]
fn default_target_is_this_machine_and_runs() {
    let (host, _) = host_and_other();
    if !matches!(std::env::consts::ARCH, "x86_64" | "aarch64") {
        return; // other architectures build generic plans
    }
    let plan = build(None);
    assert_eq!(inspect_target(&plan), host);
    let out = sinter(&["run", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_plan_for_another_architecture_is_refused_naming_both() {
    let (host, other) = host_and_other();
    let plan = build(Some(other));
    assert_eq!(inspect_target(&plan), other);
    let out = sinter(&["inspect", plan.to_str().unwrap()]);
    let shown = text(&out.stdout);
    assert!(shown.contains(&format!("target {other} (does not run on this machine, {host})")), "{shown}");
    for cmd in ["run", "bench"] {
        let out = sinter(&[cmd, plan.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{cmd} accepted a plan for {other}");
        assert!(!err.contains("panicked"), "{err}");
        let expected = format!("plan was built for target '{other}' but this machine is {host}");
        assert!(err.contains(&expected), "{cmd}: '{expected}' not in: {err}");
    }
}

#[test]
fn generic_plans_run_here_and_unknown_targets_are_rejected() {
    let plan = build(Some("generic"));
    assert_eq!(inspect_target(&plan), "generic");
    let out = sinter(&["run", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = sinter(&["build", BUNDLED, "-o", tmp("bad.plan").to_str().unwrap(), "--target", "arm64"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown target 'arm64' (known targets: generic, x86_64, aarch64, cuda:SM"), "{err}");
}
